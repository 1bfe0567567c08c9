-- public.ledger_propose: its current definition, applied again whenever this file changes (edit it here). Its
-- history, in numbered files: 0003_ledger.sql, 0019_who_may_spend.sql.

CREATE OR REPLACE FUNCTION public.ledger_propose(
    p_user_id UUID, p_type TEXT, p_amount NUMERIC,
    p_phone TEXT, p_till TEXT, p_paybill TEXT, p_account TEXT, p_agent TEXT, p_store TEXT, p_bank_code TEXT,
    p_confidence_score INT, p_voice_command_text TEXT, p_session_id TEXT,
    p_now TIMESTAMPTZ DEFAULT NULL, p_ttl_seconds INT DEFAULT 120
) RETURNS public.transactions
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    v_now TIMESTAMPTZ := coalesce(p_now, now());
    v_profile profiles%ROWTYPE;
    v_price RECORD;
    v_needs_pin BOOLEAN;
    v_row transactions%ROWTYPE;
BEGIN
    SELECT * INTO v_profile FROM profiles WHERE id = p_user_id FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM ledger_fail('user_not_found', 'no such user');
    END IF;
    IF p_type IS DISTINCT FROM 'bank_to_mpesa' AND ledger_pin_locked(v_profile, v_now) THEN
        PERFORM ledger_fail('pin_locked', 'too many wrong PINs: payments are locked for now');
    END IF;
    SELECT * INTO v_price FROM ledger_price(v_profile, p_type, p_amount, p_phone, p_till, p_paybill, p_account,
                                            p_agent, p_store, p_bank_code, p_confidence_score, v_now, 0);
    v_needs_pin := ledger_proposal_gate(v_profile, p_type, p_amount);

    UPDATE profiles SET held_balance = held_balance + v_price.hold WHERE id = p_user_id;
    INSERT INTO transactions (user_id, type, amount, fee, hold_amount, phone, till, paybill, account, agent,
                              store, bank_code, status, confidence_score, voice_command_text, session_id,
                              version, expires_at, needs_pin)
    VALUES (p_user_id, p_type, p_amount, v_price.fee, v_price.hold, v_price.phone, coalesce(p_till, ''),
            coalesce(p_paybill, ''),
            coalesce(p_account, ''), coalesce(p_agent, ''), coalesce(p_store, ''), coalesce(p_bank_code, ''),
            'pending', p_confidence_score, p_voice_command_text, p_session_id,
            1, v_now + make_interval(secs => p_ttl_seconds), v_needs_pin)
    RETURNING * INTO v_row;
    RETURN v_row;
END;
$$;

REVOKE ALL ON FUNCTION public.ledger_propose(uuid, text, numeric, text, text, text, text, text, text, text, integer, text, text, timestamp with time zone, integer) FROM PUBLIC, anon, authenticated;
