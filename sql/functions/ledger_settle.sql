-- public.ledger_settle: its current definition, applied again whenever this file changes (edit it here). Its
-- history, in numbered files: 0003_ledger.sql, 0008_money_in.sql.

-- ledger_settle of 0003 settles payouts only: a bank_to_mpesa is completed by its deposit
-- (ledger_credit_c2b) or failed by its expiry (ledger_expire_deposits), never by anyone's word.
CREATE OR REPLACE FUNCTION public.ledger_settle(p_transaction_id UUID, p_success BOOLEAN, p_receipt TEXT,
    p_error TEXT) RETURNS TEXT
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    v_user UUID;
    v_tx transactions%ROWTYPE;
BEGIN
    SELECT user_id INTO v_user FROM transactions WHERE id = p_transaction_id;
    IF NOT FOUND THEN
        RETURN 'not_found';
    END IF;
    PERFORM 1 FROM profiles WHERE id = v_user FOR UPDATE;
    SELECT * INTO v_tx FROM transactions WHERE id = p_transaction_id FOR UPDATE;
    IF v_tx.type = 'bank_to_mpesa' THEN
        RETURN 'not_a_payout';
    ELSIF v_tx.status IN ('completed', 'failed') THEN
        RETURN 'already_settled';
    ELSIF v_tx.status <> 'processing' THEN
        RETURN 'not_processing';
    END IF;

    IF p_success THEN
        UPDATE transactions
        SET status = 'completed', mpesa_transaction_id = coalesce(p_receipt, ''), completed_at = now()
        WHERE id = v_tx.id;
    ELSE
        PERFORM update_user_balance(v_user, v_tx.id, v_tx.amount, 'refund');
        PERFORM update_user_balance(v_user, v_tx.id, v_tx.fee, 'fee_refund');
        UPDATE transactions
        SET status = 'failed', error_message = coalesce(nullif(p_error, ''), 'payment failed'),
            completed_at = now()
        WHERE id = v_tx.id;
        UPDATE ledger_usage SET confirmed_amount = confirmed_amount - v_tx.amount
        WHERE user_id = v_user AND day = ledger_nairobi_day(v_tx.confirmed_at);
    END IF;
    UPDATE payout_outbox SET status = 'settled', settled_at = now() WHERE transaction_id = v_tx.id;
    RETURN CASE WHEN p_success THEN 'completed' ELSE 'failed' END;
END;
$$;

REVOKE ALL ON FUNCTION public.ledger_settle(uuid, boolean, text, text) FROM PUBLIC, anon, authenticated;
