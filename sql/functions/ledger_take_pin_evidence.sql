-- public.ledger_take_pin_evidence: its current definition, applied again whenever this file changes (edit it
-- here). Its history, in numbered files: 0019_who_may_spend.sql.

-- Takes the evidence of a correct PIN checked for this user in this database transaction, if any: true
-- once, then gone (one PIN confirms one payment).
CREATE OR REPLACE FUNCTION public.ledger_take_pin_evidence(p_user_id UUID) RETURNS BOOLEAN
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
BEGIN
    DELETE FROM ledger_pin_evidence WHERE user_id = p_user_id AND xact = pg_current_xact_id();
    RETURN FOUND;
END;
$$;

REVOKE ALL ON FUNCTION public.ledger_take_pin_evidence(uuid) FROM PUBLIC, anon, authenticated;
