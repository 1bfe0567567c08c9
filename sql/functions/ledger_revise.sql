-- public.ledger_revise: its current definition, applied again whenever this file changes (edit it here). Its
-- history, in numbered files: 0003_ledger.sql, 0019_who_may_spend.sql.

CREATE OR REPLACE FUNCTION public.ledger_revise(
    p_transaction_id UUID, p_user_id UUID, p_type TEXT, p_amount NUMERIC,
    p_phone TEXT, p_till TEXT, p_paybill TEXT, p_account TEXT, p_agent TEXT, p_store TEXT, p_bank_code TEXT,
    p_confidence_score INT, p_voice_command_text TEXT,
    p_now TIMESTAMPTZ DEFAULT NULL, p_ttl_seconds INT DEFAULT 120
) RETURNS public.transactions
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    v_now TIMESTAMPTZ := coalesce(p_now, now());
    v_profile profiles%ROWTYPE;
    v_tx transactions%ROWTYPE;
    v_price RECORD;
    v_needs_pin BOOLEAN;
BEGIN
    SELECT * INTO v_profile FROM profiles WHERE id = p_user_id FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM ledger_fail('user_not_found', 'no such user');
    END IF;
    SELECT * INTO v_tx FROM transactions WHERE id = p_transaction_id AND user_id = p_user_id FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM ledger_fail('not_found', 'no such proposal');
    END IF;
    IF v_tx.status = 'cancelled' THEN
        PERFORM ledger_fail(CASE WHEN v_tx.error_message = 'expired' THEN 'expired' ELSE 'cancelled' END,
                            'the proposal was cancelled');
    ELSIF v_tx.status <> 'pending' THEN
        PERFORM ledger_fail('already_confirmed', 'the proposal was already confirmed');
    ELSIF v_now >= v_tx.expires_at THEN
        PERFORM ledger_fail('expired', 'the proposal expired');
    END IF;
    IF p_type IS DISTINCT FROM 'bank_to_mpesa' AND ledger_pin_locked(v_profile, v_now) THEN
        PERFORM ledger_fail('pin_locked', 'too many wrong PINs: payments are locked for now');
    END IF;
    SELECT * INTO v_price FROM ledger_price(v_profile, p_type, p_amount, p_phone, p_till, p_paybill, p_account,
                                            p_agent, p_store, p_bank_code, p_confidence_score, v_now,
                                            v_tx.hold_amount);
    v_needs_pin := ledger_proposal_gate(v_profile, p_type, p_amount);

    UPDATE profiles SET held_balance = held_balance - v_tx.hold_amount + v_price.hold WHERE id = p_user_id;
    UPDATE transactions
    SET type = p_type, amount = p_amount, fee = v_price.fee, hold_amount = v_price.hold, phone = v_price.phone,
        till = coalesce(p_till, ''), paybill = coalesce(p_paybill, ''), account = coalesce(p_account, ''),
        agent = coalesce(p_agent, ''), store = coalesce(p_store, ''), bank_code = coalesce(p_bank_code, ''),
        confidence_score = p_confidence_score,
        voice_command_text = coalesce(p_voice_command_text, voice_command_text),
        version = version + 1, expires_at = v_now + make_interval(secs => p_ttl_seconds),
        needs_pin = v_needs_pin
    WHERE id = p_transaction_id
    RETURNING * INTO v_tx;
    RETURN v_tx;
END;
$$;

REVOKE ALL ON FUNCTION public.ledger_revise(uuid, uuid, text, numeric, text, text, text, text, text, text, text, integer, text, timestamp with time zone, integer) FROM PUBLIC, anon, authenticated;
