-- public.ledger_expire_deposits: its current definition, applied again whenever this file changes (edit it
-- here). Its history, in numbered files: 0008_money_in.sql.

-- Expected deposits whose 24 hours ran out: the bank_to_mpesa fails (nothing to refund: nothing left the
-- wallet). Returns how many.
CREATE OR REPLACE FUNCTION public.ledger_expire_deposits(p_now TIMESTAMPTZ DEFAULT NULL) RETURNS INT
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    v_now TIMESTAMPTZ := coalesce(p_now, now());
    v_due RECORD;
    v_tx transactions%ROWTYPE;
    v_count INT := 0;
BEGIN
    FOR v_due IN
        SELECT transaction_id, user_id FROM c2b_expected_deposits
        WHERE status = 'awaiting' AND expires_at <= v_now ORDER BY user_id, transaction_id
    LOOP
        PERFORM 1 FROM profiles WHERE id = v_due.user_id FOR UPDATE;
        PERFORM 1 FROM c2b_expected_deposits WHERE transaction_id = v_due.transaction_id
                                                 AND status = 'awaiting' FOR UPDATE;
        IF FOUND THEN
            SELECT * INTO v_tx FROM transactions WHERE id = v_due.transaction_id FOR UPDATE;
            IF v_tx.status = 'processing' THEN
                UPDATE transactions
                SET status = 'failed', error_message = 'no deposit arrived within 24 hours', completed_at = v_now
                WHERE id = v_tx.id;
                UPDATE ledger_usage SET confirmed_amount = confirmed_amount - v_tx.amount
                WHERE user_id = v_tx.user_id AND day = ledger_nairobi_day(v_tx.confirmed_at);
            END IF;
            UPDATE c2b_expected_deposits SET status = 'expired' WHERE transaction_id = v_due.transaction_id;
            v_count := v_count + 1;
        END IF;
    END LOOP;
    RETURN v_count;
END;
$$;

REVOKE ALL ON FUNCTION public.ledger_expire_deposits(timestamp with time zone) FROM PUBLIC, anon, authenticated;
