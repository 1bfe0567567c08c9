-- public.ledger_confirm: its current definition, applied again whenever this file changes (edit it here). Its
-- history, in numbered files: 0003_ledger.sql, 0008_money_in.sql, 0019_who_may_spend.sql.

CREATE OR REPLACE FUNCTION public.ledger_confirm(
    p_transaction_id UUID, p_user_id UUID, p_version INT, p_voice_verified BOOLEAN,
    p_now TIMESTAMPTZ DEFAULT NULL
) RETURNS JSONB
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    v_now TIMESTAMPTZ := coalesce(p_now, now());
    v_profile profiles%ROWTYPE;
    v_tx transactions%ROWTYPE;
    v_terms RECORD;
    v_refusal TEXT;
    v_wallet NUMERIC(12,2);
    v_topup_id UUID;
    v_result JSONB;
    v_reference TEXT;
    v_paybill TEXT;
    v_pin BOOLEAN;
    v_constraint TEXT;
BEGIN
    SELECT * INTO v_profile FROM profiles WHERE id = p_user_id FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM ledger_fail('not_found', 'no such proposal');
    END IF;
    SELECT * INTO v_tx FROM transactions WHERE id = p_transaction_id AND user_id = p_user_id FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM ledger_fail('not_found', 'no such proposal');
    END IF;

    IF v_tx.status IN ('processing', 'completed', 'failed') THEN
        IF p_version IS DISTINCT FROM v_tx.version THEN
            PERFORM ledger_fail('stale_version', 'that version of the proposal was replaced by a correction');
        END IF;
        RETURN v_tx.confirm_result || jsonb_build_object('outcome', 'already_confirmed', 'status', v_tx.status);
    END IF;
    IF v_tx.status = 'cancelled' THEN
        PERFORM ledger_fail(CASE WHEN v_tx.error_message = 'expired' THEN 'expired' ELSE 'cancelled' END,
                            'the proposal was cancelled');
    END IF;
    IF p_version IS DISTINCT FROM v_tx.version THEN
        PERFORM ledger_fail('stale_version', 'that version of the proposal was replaced by a correction');
    END IF;
    IF v_now >= v_tx.expires_at THEN
        PERFORM ledger_void(v_tx, 'expired');
        RETURN jsonb_build_object('error', 'expired', 'message', 'the proposal expired');
    END IF;

    -- The gate, first the lock (a locked user's payment of any amount is refused) ...
    IF v_tx.type <> 'bank_to_mpesa' AND ledger_pin_locked(v_profile, v_now) THEN
        PERFORM ledger_void(v_tx, 'pin_locked');
        RETURN jsonb_build_object('error', 'pin_locked',
                                  'message', 'too many wrong PINs: payments are locked for now');
    END IF;
    SELECT * INTO v_terms FROM ledger_user_terms(p_user_id, v_now);
    v_refusal := ledger_limit_refusal(p_user_id, v_tx.amount, v_terms.monthly_limit, v_now);
    IF v_refusal IS NOT NULL THEN
        PERFORM ledger_void(v_tx, v_refusal);
        RETURN jsonb_build_object('error', v_refusal, 'message', ledger_limit_message(v_refusal));
    END IF;
    -- ... then the PIN (never asked for a payment a limit refuses anyway).
    v_pin := ledger_take_pin_evidence(p_user_id);
    IF v_tx.type <> 'bank_to_mpesa' AND NOT v_pin AND ledger_needs_pin(v_profile, v_tx.type, v_tx.amount) THEN
        IF v_profile.pin_hash IS NULL THEN
            PERFORM ledger_void(v_tx, 'pin_not_set');
            RETURN jsonb_build_object('error', 'pin_not_set',
                                      'message', 'this payment needs a PIN, and none is set');
        END IF;
        PERFORM ledger_fail('pin_required', 'this payment needs the PIN: finish it in the app');
    END IF;

    v_wallet := v_profile.wallet_balance;
    IF v_tx.type <> 'bank_to_mpesa' THEN
        PERFORM update_user_balance(p_user_id, v_tx.id, -v_tx.amount, 'debit', NULL, v_tx.hold_amount);
        v_wallet := update_user_balance(p_user_id, v_tx.id, -v_tx.fee, 'fee');
        IF v_pin THEN
            UPDATE profiles SET no_pin_count = 0, no_pin_amount = 0 WHERE id = p_user_id;
        ELSE
            UPDATE profiles SET no_pin_count = no_pin_count + 1, no_pin_amount = no_pin_amount + v_tx.amount
            WHERE id = p_user_id;
        END IF;
        IF v_profile.mpesa_auto_topup AND v_wallet < v_profile.mpesa_auto_topup_threshold
           AND coalesce(v_profile.mpesa_auto_topup_amount, 0) > 0 THEN
            INSERT INTO mpesa_transactions (user_id, kind, status, amount, phone_number)
            VALUES (p_user_id, 'auto_topup', 'pending', v_profile.mpesa_auto_topup_amount,
                    coalesce(nullif(v_profile.mpesa_number, ''), v_profile.phone_number))
            ON CONFLICT (user_id) WHERE kind = 'auto_topup' AND status = 'pending' DO NOTHING
            RETURNING id INTO v_topup_id;
        END IF;
    ELSE
        SELECT shortcode INTO v_paybill FROM c2b_paybill;
        LOOP
            v_reference := ledger_new_reference('OP', 6);
            BEGIN
                INSERT INTO c2b_expected_deposits (transaction_id, user_id, account_reference, paybill,
                                                   expires_at)
                VALUES (v_tx.id, p_user_id, v_reference, v_paybill, v_now + interval '24 hours');
                EXIT;
            EXCEPTION WHEN unique_violation THEN
                -- Only a reference already taken is drawn again; any other uniqueness broken (a second
                -- deposit for this payment) is an error, never a loop that spins forever.
                GET STACKED DIAGNOSTICS v_constraint = CONSTRAINT_NAME;
                IF v_constraint IS DISTINCT FROM 'c2b_expected_deposits_account_reference_key' THEN
                    RAISE;
                END IF;
            END;
        END LOOP;
    END IF;

    v_result := jsonb_build_object(
        'outcome', 'confirmed', 'transaction_id', v_tx.id, 'version', v_tx.version, 'status', 'processing',
        'type', v_tx.type, 'amount', v_tx.amount::text, 'fee', v_tx.fee::text,
        'voice_verified', coalesce(p_voice_verified, false), 'pin_verified', v_pin,
        'wallet_balance', v_wallet::text,
        'available', (v_wallet - (v_profile.held_balance - v_tx.hold_amount))::text,
        'confirmed_at', v_now, 'auto_topup_id', v_topup_id);
    IF v_reference IS NOT NULL THEN
        v_result := v_result || jsonb_build_object('paybill', v_paybill, 'account_reference', v_reference,
                                                   'deposit_expires_at', v_now + interval '24 hours');
    END IF;
    UPDATE transactions
    SET status = 'processing', confirmed_at = v_now, voice_verified = coalesce(p_voice_verified, false),
        pin_verified = v_pin, confirm_result = v_result, external_ref = coalesce(v_reference, external_ref)
    WHERE id = v_tx.id;
    INSERT INTO ledger_usage AS u (user_id, day, confirmed_count, confirmed_amount)
    VALUES (p_user_id, ledger_nairobi_day(v_now), 1, v_tx.amount)
    ON CONFLICT (user_id, day) DO UPDATE
    SET confirmed_count = u.confirmed_count + 1, confirmed_amount = u.confirmed_amount + excluded.confirmed_amount;
    IF v_tx.type <> 'bank_to_mpesa' THEN
        INSERT INTO payout_outbox (transaction_id, user_id, kind) VALUES (v_tx.id, p_user_id, 'mpesa_payout');
    END IF;
    RETURN v_result;
END;
$$;

REVOKE ALL ON FUNCTION public.ledger_confirm(uuid, uuid, integer, boolean, timestamp with time zone) FROM PUBLIC, anon, authenticated;
