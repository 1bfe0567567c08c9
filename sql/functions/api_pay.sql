-- public.api_pay: its current definition, applied again whenever this file changes (edit it here). Its
-- history, in numbered files: 0026_api_keys.sql, 0036_api_key_holes.sql.

-- One payment by a `pay` key (already checked by api_key_use in this transaction), idempotent per
-- (user, Idempotency-Key) for 24 hours: {status, body, replayed}. The idempotency row is inserted first; a
-- concurrent retry's insert waits on it and then finds the stored answer, so the same key pays once.
CREATE OR REPLACE FUNCTION public.api_pay(
    p_key_id UUID, p_idempotency_key TEXT, p_request_hash TEXT, p_phone TEXT, p_amount NUMERIC,
    p_description TEXT, p_now TIMESTAMPTZ DEFAULT NULL
) RETURNS JSONB
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    v_now TIMESTAMPTZ := coalesce(p_now, now());
    v_key api_keys%ROWTYPE;
    v_seen idempotency_keys%ROWTYPE;
    v_payee trusted_payees%ROWTYPE;
    v_today NUMERIC;
    v_tx transactions%ROWTYPE;
    v_result JSONB;
    v_no_pin_count INT;
    v_no_pin_amount NUMERIC;
BEGIN
    -- The key's row lock first: the payments of one key one at a time (its daily limit is counted under
    -- it), and before the idempotency row, whose foreign key share-locks the key row (else two payments of
    -- one key deadlock).
    SELECT * INTO v_key FROM api_keys WHERE id = p_key_id FOR UPDATE;
    IF NOT FOUND OR v_key.revoked_at IS NOT NULL OR NOT 'pay' = ANY (v_key.scopes) THEN
        PERFORM ledger_fail('invalid_api_key', 'the API key is not valid');
    END IF;
    DELETE FROM idempotency_keys
    WHERE user_id = v_key.user_id AND key = p_idempotency_key AND expires_at <= v_now;
    INSERT INTO idempotency_keys (user_id, key, request_hash, api_key_id, created_at, expires_at)
    VALUES (v_key.user_id, p_idempotency_key, p_request_hash, v_key.id, v_now, v_now + interval '24 hours')
    ON CONFLICT (user_id, key) DO NOTHING;
    IF NOT FOUND THEN
        SELECT * INTO v_seen FROM idempotency_keys WHERE user_id = v_key.user_id AND key = p_idempotency_key;
        IF v_seen.request_hash IS DISTINCT FROM p_request_hash THEN
            RETURN jsonb_build_object('status', 409, 'replayed', false, 'body', jsonb_build_object('error', jsonb_build_object(
                'code', 'idempotency_key_reused',
                'message', 'this Idempotency-Key was used with another request')));
        END IF;
        RETURN jsonb_build_object('status', v_seen.status, 'body', v_seen.answer, 'replayed', true);
    END IF;

    SELECT * INTO v_payee FROM trusted_payees WHERE user_id = v_key.user_id AND phone = p_phone;
    IF NOT FOUND THEN
        RETURN api_pay_answer(v_key.user_id, p_idempotency_key, 403, jsonb_build_object('error', jsonb_build_object(
            'code', 'payee_not_trusted',
            'message', 'an API key pays only trusted payees, confirmed with the PIN in the app')));
    END IF;
    -- The key's own daily limit, counted under its row lock.
    SELECT coalesce(sum(amount), 0) INTO v_today FROM transactions
    WHERE api_key_id = v_key.id AND status IN ('processing', 'completed')
      AND ledger_nairobi_day(confirmed_at) = ledger_nairobi_day(v_now);
    IF v_today + p_amount > v_key.daily_limit THEN
        RETURN api_pay_answer(v_key.user_id, p_idempotency_key, 403, jsonb_build_object('error', jsonb_build_object(
            'code', 'api_key_daily_limit',
            'message', format('this key may pay KES %s a day; KES %s paid today', v_key.daily_limit, v_today))));
    END IF;

    -- The allowance of payments without a PIN, kept as it is: the exemption is not a PIN (below).
    SELECT no_pin_count, no_pin_amount INTO v_no_pin_count, v_no_pin_amount
    FROM profiles WHERE id = v_key.user_id FOR UPDATE;
    BEGIN
        v_tx := ledger_propose(v_key.user_id, 'send_phone', p_amount, p_phone, NULL, NULL, NULL, NULL, NULL,
                               NULL, NULL, left(p_description, 500), NULL, v_now, 120);
        UPDATE transactions SET api_key_id = v_key.id, trusted_payee_id = v_payee.id WHERE id = v_tx.id;
        -- PSD2's trusted-beneficiary exemption: the payee row, confirmed with the PIN, is the evidence.
        INSERT INTO ledger_pin_evidence (user_id, xact) VALUES (v_key.user_id, pg_current_xact_id())
        ON CONFLICT (user_id) DO UPDATE SET xact = excluded.xact;
        v_result := ledger_confirm(v_tx.id, v_key.user_id, v_tx.version, false, v_now);
        PERFORM ledger_take_pin_evidence(v_key.user_id);  -- left unused when the ledger refused first
        -- ledger_confirm counts the evidence as a PIN: it reset the allowance and wrote pin_verified. A
        -- key's payment is exempt from the PIN, not confirmed with it: the allowance stays as it was (a
        -- thief with the phone's token gets no fresh payments without a PIN when the till pays), and the
        -- row says no PIN was checked.
        IF NOT v_result ? 'error' THEN
            UPDATE profiles SET no_pin_count = v_no_pin_count, no_pin_amount = v_no_pin_amount
            WHERE id = v_key.user_id;
            v_result := v_result || jsonb_build_object('pin_verified', false);
            UPDATE transactions SET pin_verified = false, confirm_result = v_result WHERE id = v_tx.id;
        END IF;
    EXCEPTION WHEN SQLSTATE 'OPL01' THEN
        RETURN api_pay_answer(v_key.user_id, p_idempotency_key, 422, jsonb_build_object('error', jsonb_build_object(
            'code', SQLERRM, 'message', 'the ledger refused this payment')));
    END;
    IF v_result ? 'error' THEN
        RETURN api_pay_answer(v_key.user_id, p_idempotency_key, 422, jsonb_build_object('error', jsonb_build_object(
            'code', v_result ->> 'error', 'message', v_result ->> 'message'), 'transaction_id', v_tx.id));
    END IF;
    INSERT INTO api_key_events (user_id, key_id, event, detail, at)
    VALUES (v_key.user_id, v_key.id, 'payment',
            jsonb_build_object('transaction_id', v_tx.id, 'amount', p_amount::text, 'phone', p_phone), v_now);
    RETURN api_pay_answer(v_key.user_id, p_idempotency_key, 201, jsonb_build_object(
        'transaction_id', v_tx.id, 'status', v_result ->> 'status', 'amount', v_result ->> 'amount',
        'fee', v_result ->> 'fee', 'phone', p_phone, 'payee', v_payee.name,
        'wallet_balance', v_result ->> 'wallet_balance', 'confirmed_at', v_result -> 'confirmed_at'));
END;
$$;

REVOKE ALL ON FUNCTION public.api_pay(uuid, text, text, text, numeric, text, timestamp with time zone) FROM PUBLIC, anon, authenticated;
