-- public.ledger_proposal_gate: its current definition, applied again whenever this file changes (edit it
-- here). Its history, in numbered files: 0019_who_may_spend.sql, 0028_business.sql.

-- The gate of a proposal after its price (propose and revise, the profile locked; the lock was checked
-- first): refuses a payment that needs a PIN the user has not set; otherwise whether its confirmation will
-- need the PIN. A business wallet's proposals are gated on the member (business_propose / business_revise).
CREATE OR REPLACE FUNCTION public.ledger_proposal_gate(p_profile profiles, p_type TEXT, p_amount NUMERIC)
RETURNS BOOLEAN
LANGUAGE plpgsql STABLE SET search_path = public, pg_temp AS $$
DECLARE
    v_needs BOOLEAN;
BEGIN
    IF EXISTS (SELECT 1 FROM businesses b WHERE b.id = p_profile.id) THEN
        RETURN false;
    END IF;
    v_needs := coalesce(ledger_needs_pin(p_profile, p_type, p_amount), false);
    IF v_needs AND p_profile.pin_hash IS NULL THEN
        PERFORM ledger_fail('pin_not_set', 'this payment needs a PIN, and none is set');
    END IF;
    RETURN v_needs;
END;
$$;

REVOKE ALL ON FUNCTION public.ledger_proposal_gate(profiles, text, numeric) FROM PUBLIC, anon, authenticated;
