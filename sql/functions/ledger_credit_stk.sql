-- public.ledger_credit_stk: its current definition, applied again whenever this file changes (edit it here).
-- Its history, in numbered files: 0003_ledger.sql (dropped in 0008_money_in.sql), 0008_money_in.sql,
-- 0021_daraja_second_review.sql.

-- Issue 18: a top-up that M-Pesa failed is never credited by a later success callback on its word; the STK
-- query decides (`needs_query`, queued in mpesa_stk_alternates under the push's own id). Otherwise as 0008.
CREATE OR REPLACE FUNCTION public.ledger_credit_stk(p_topup_id UUID, p_checkout_request_id TEXT, p_success BOOLEAN,
    p_amount NUMERIC, p_receipt TEXT, p_error TEXT, p_verified BOOLEAN DEFAULT false) RETURNS TEXT
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    v_id UUID;
    v_user UUID;
    v_row mpesa_transactions%ROWTYPE;
BEGIN
    IF coalesce(p_checkout_request_id, '') <> '' THEN
        SELECT id, user_id INTO v_id, v_user FROM mpesa_transactions
        WHERE checkout_request_id = p_checkout_request_id;
        IF v_id IS NULL THEN
            SELECT a.topup_id, m.user_id INTO v_id, v_user
            FROM mpesa_stk_alternates a JOIN mpesa_transactions m ON m.id = a.topup_id
            WHERE a.checkout_request_id = p_checkout_request_id;
        END IF;
    ELSIF NOT p_verified THEN
        RETURN 'not_found';
    END IF;
    IF v_id IS NULL AND p_topup_id IS NOT NULL THEN
        SELECT id, user_id INTO v_id, v_user FROM mpesa_transactions WHERE id = p_topup_id;
    END IF;
    IF v_id IS NULL THEN
        RETURN 'not_found';
    END IF;
    PERFORM 1 FROM profiles WHERE id = v_user FOR UPDATE;
    SELECT * INTO v_row FROM mpesa_transactions WHERE id = v_id FOR UPDATE;

    IF coalesce(p_checkout_request_id, '') = '' THEN
        NULL;  -- verified by Pull Transactions: the top-up itself
    ELSIF v_row.checkout_request_id IS NULL THEN
        IF EXISTS (SELECT 1 FROM mpesa_transactions WHERE checkout_request_id = p_checkout_request_id) THEN
            RETURN 'not_found';  -- that push belongs to another top-up
        END IF;
        DELETE FROM mpesa_stk_alternates WHERE checkout_request_id = p_checkout_request_id;
        UPDATE mpesa_transactions SET checkout_request_id = p_checkout_request_id
        WHERE id = v_id
        RETURNING * INTO v_row;
    ELSIF v_row.checkout_request_id <> p_checkout_request_id THEN
        IF NOT p_verified THEN
            INSERT INTO mpesa_stk_alternates (checkout_request_id, topup_id) VALUES (p_checkout_request_id, v_id)
            ON CONFLICT (checkout_request_id) DO NOTHING;
            RETURN 'needs_query';
        END IF;
        INSERT INTO mpesa_stk_alternates (checkout_request_id, topup_id) VALUES (p_checkout_request_id, v_id)
        ON CONFLICT (checkout_request_id) DO NOTHING;
        IF NOT p_success THEN
            UPDATE mpesa_stk_alternates SET status = 'unpaid' WHERE checkout_request_id = p_checkout_request_id;
            RETURN 'already_settled';
        END IF;
        IF v_row.status = 'completed' THEN
            UPDATE mpesa_stk_alternates SET status = 'paid_twice'
            WHERE checkout_request_id = p_checkout_request_id;
            RETURN 'paid_twice';
        END IF;
        IF p_amount IS NOT NULL AND p_amount <> v_row.amount THEN
            RETURN 'amount_mismatch';
        END IF;
        -- The paid push replaces the top-up's; the replaced one is queried like any alternate.
        DELETE FROM mpesa_stk_alternates WHERE checkout_request_id = p_checkout_request_id;
        INSERT INTO mpesa_stk_alternates (checkout_request_id, topup_id)
        VALUES (v_row.checkout_request_id, v_id)
        ON CONFLICT (checkout_request_id) DO UPDATE SET status = 'to_query', query_due_at = now();
        UPDATE mpesa_transactions SET checkout_request_id = p_checkout_request_id WHERE id = v_id
        RETURNING * INTO v_row;
    END IF;

    IF p_verified AND coalesce(p_checkout_request_id, '') <> '' THEN
        -- Our own query answered for this push: it needs no further question.
        UPDATE mpesa_stk_alternates SET status = CASE WHEN p_success THEN 'paid' ELSE 'unpaid' END
        WHERE checkout_request_id = p_checkout_request_id AND status = 'to_query';
    END IF;
    IF v_row.status = 'completed' THEN
        RETURN 'already_settled';
    END IF;
    IF v_row.status = 'failed' AND NOT p_success THEN
        RETURN 'already_settled';
    END IF;
    IF v_row.status = 'failed' AND NOT p_verified THEN
        -- A success callback for a top-up M-Pesa said failed: one of the two is wrong (or forged). Nothing
        -- is credited on a callback's word: an STK query decides (as a payout's opposite verdicts do).
        INSERT INTO mpesa_stk_alternates (checkout_request_id, topup_id, status, query_due_at)
        VALUES (v_row.checkout_request_id, v_id, 'to_query', now())
        ON CONFLICT (checkout_request_id) DO UPDATE SET status = 'to_query', query_due_at = now();
        RETURN 'needs_query';
    END IF;
    IF p_success THEN
        IF p_amount IS NOT NULL AND p_amount <> v_row.amount THEN
            RETURN 'amount_mismatch';
        END IF;
        UPDATE mpesa_transactions
        SET status = 'completed', mpesa_receipt_number = p_receipt, completed_at = now(), error_message = NULL,
            push_unknown_since = NULL
        WHERE id = v_row.id;
        PERFORM update_user_balance(v_user, NULL, v_row.amount, 'topup', v_row.id);
        RETURN 'credited';
    END IF;
    UPDATE mpesa_transactions
    SET status = 'failed', error_message = coalesce(nullif(p_error, ''), 'top-up failed'), completed_at = now()
    WHERE id = v_row.id;
    RETURN 'failed';
END;
$$;

REVOKE ALL ON FUNCTION public.ledger_credit_stk(uuid, text, boolean, numeric, text, text, boolean) FROM PUBLIC, anon, authenticated;
