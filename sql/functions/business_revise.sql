-- public.business_revise: its current definition, applied again whenever this file changes (edit it
-- here). Its history, in numbered files: 0028_business.sql.

CREATE OR REPLACE FUNCTION public.business_revise(
    p_transaction_id UUID, p_member UUID, p_type TEXT, p_amount NUMERIC,
    p_phone TEXT, p_till TEXT, p_paybill TEXT, p_account TEXT, p_agent TEXT, p_store TEXT, p_bank_code TEXT,
    p_confidence_score INT, p_voice_command_text TEXT,
    p_now TIMESTAMPTZ DEFAULT NULL, p_ttl_seconds INT DEFAULT 120
) RETURNS public.transactions
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    v_now TIMESTAMPTZ := coalesce(p_now, now());
    v_business UUID;
    v_m business_members%ROWTYPE;
    v_tx transactions%ROWTYPE;
    v_person profiles%ROWTYPE;
BEGIN
    SELECT t.user_id INTO v_business FROM transactions t
    WHERE t.id = p_transaction_id AND t.made_by = p_member AND t.approval_state IS NULL
      AND EXISTS (SELECT 1 FROM businesses b WHERE b.id = t.user_id);
    IF NOT FOUND THEN
        PERFORM ledger_fail('not_found', 'no such proposal');
    END IF;
    -- The member's profile first (the order business_confirm and the PIN attempt take: the person, their
    -- membership, the wallet, the transaction), locked: stamping the row with made_by key-shares it, and
    -- taking that after the wallet's lock deadlocked with the member's own confirmation.
    SELECT * INTO v_person FROM profiles WHERE id = p_member FOR UPDATE;
    IF ledger_pin_locked(v_person, v_now) THEN
        PERFORM ledger_fail('pin_locked', 'too many wrong PINs: payments are locked for now');
    END IF;
    v_m := business_payer(v_business, p_member, p_type, p_amount, v_now, p_transaction_id);
    v_tx := ledger_revise(p_transaction_id, v_business, p_type, p_amount, p_phone, p_till, p_paybill, p_account,
                          p_agent, p_store, p_bank_code, p_confidence_score, p_voice_command_text, v_now,
                          p_ttl_seconds);
    RETURN business_stamp(v_tx, v_m);
END;
$$;

REVOKE ALL ON FUNCTION public.business_revise(uuid, uuid, text, numeric, text, text, text, text, text, text, text, integer, text, timestamp with time zone, integer) FROM PUBLIC, anon, authenticated;
