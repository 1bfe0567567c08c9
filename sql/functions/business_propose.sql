-- public.business_propose: its current definition, applied again whenever this file changes (edit it
-- here). Its history, in numbered files: 0028_business.sql.

-- A member's proposal from the business wallet: the member's gate, then the ledger's proposal on the wallet
-- (fee, limits, hold), stamped with who makes it. Refusals as ledger_propose's (OPL01).
CREATE OR REPLACE FUNCTION public.business_propose(
    p_business UUID, p_member UUID, p_type TEXT, p_amount NUMERIC,
    p_phone TEXT, p_till TEXT, p_paybill TEXT, p_account TEXT, p_agent TEXT, p_store TEXT, p_bank_code TEXT,
    p_confidence_score INT, p_voice_command_text TEXT, p_session_id TEXT,
    p_now TIMESTAMPTZ DEFAULT NULL, p_ttl_seconds INT DEFAULT 120
) RETURNS public.transactions
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    v_now TIMESTAMPTZ := coalesce(p_now, now());
    v_m business_members%ROWTYPE;
    v_tx transactions%ROWTYPE;
    v_person profiles%ROWTYPE;
BEGIN
    -- The member's profile first (the order business_confirm and the PIN attempt take: the person, their
    -- membership, the wallet, the transaction), locked: stamping the row with made_by key-shares it, and
    -- taking that after the wallet's lock deadlocked with the member's own confirmation.
    SELECT * INTO v_person FROM profiles WHERE id = p_member FOR UPDATE;
    IF ledger_pin_locked(v_person, v_now) THEN
        PERFORM ledger_fail('pin_locked', 'too many wrong PINs: payments are locked for now');
    END IF;
    v_m := business_payer(p_business, p_member, p_type, p_amount, v_now, NULL);
    v_tx := ledger_propose(p_business, p_type, p_amount, p_phone, p_till, p_paybill, p_account, p_agent, p_store,
                           p_bank_code, p_confidence_score, p_voice_command_text, p_session_id, v_now,
                           p_ttl_seconds);
    RETURN business_stamp(v_tx, v_m);
END;
$$;

REVOKE ALL ON FUNCTION public.business_propose(uuid, uuid, text, numeric, text, text, text, text, text, text, text, integer, text, text, timestamp with time zone, integer) FROM PUBLIC, anon, authenticated;
