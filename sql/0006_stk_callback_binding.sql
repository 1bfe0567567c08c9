-- Top-ups whose STK push answer was lost, and top-up verdicts that arrive out of order (adversarial review).
--
-- 1. Each STK push now carries its top-up's id in its CallBackURL (`.../stk/<mpesa_transactions.id>`), and
--    the route records it with the callback. When Daraja accepted a push but its answer never reached us
--    (network, 5xx after processing), we never learn the CheckoutRequestID: before, the customer's payment
--    was kept as `not_found` for ten minutes and then forgotten (money taken, wallet never credited). Now
--    the callback names its top-up, binds the checkout id to it, and credits it once.
--    Such a top-up may already be marked failed ("STK push not sent": we could not tell it was sent); a
--    success callback naming it revives it.
-- 3. M-Pesa's word that a push was paid wins over an earlier failure verdict (an STK query that answered
--    before the customer finished, a callback out of order): a failed top-up moved no money, so crediting
--    it on a later success is the only way the customer's payment is not lost, and it still credits once.
-- 2. A success for a second push of the same top-up (an auto top-up retried after a lost answer, paid
--    twice by the customer) is credited as a top-up row of its own, so no paid shilling is lost.

ALTER TABLE public.mpesa_callbacks ADD COLUMN topup_id UUID;

-- The STK verdict for a checkout id, optionally naming the top-up row the push was sent for.
-- Returns credited | failed | already_settled | not_found | amount_mismatch (nothing changes).
CREATE FUNCTION public.ledger_credit_stk(p_topup_id UUID, p_checkout_request_id TEXT, p_success BOOLEAN,
    p_amount NUMERIC, p_receipt TEXT, p_error TEXT) RETURNS TEXT
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    v_id UUID;
    v_user UUID;
    v_row mpesa_transactions%ROWTYPE;
    v_new UUID;
BEGIN
    IF p_checkout_request_id IS NULL OR p_checkout_request_id = '' THEN
        RETURN 'not_found';
    END IF;
    SELECT id, user_id INTO v_id, v_user FROM mpesa_transactions
    WHERE checkout_request_id = p_checkout_request_id;
    IF NOT FOUND AND p_topup_id IS NOT NULL THEN
        SELECT id, user_id INTO v_id, v_user FROM mpesa_transactions WHERE id = p_topup_id;
    END IF;
    IF v_id IS NULL THEN
        RETURN 'not_found';
    END IF;
    PERFORM 1 FROM profiles WHERE id = v_user FOR UPDATE;
    SELECT * INTO v_row FROM mpesa_transactions WHERE id = v_id FOR UPDATE;

    IF v_row.checkout_request_id IS NULL THEN
        -- The push's answer was lost or is not recorded yet: this callback names the push.
        UPDATE mpesa_transactions SET checkout_request_id = p_checkout_request_id
        WHERE id = v_id
        RETURNING * INTO v_row;
    ELSIF v_row.checkout_request_id <> p_checkout_request_id THEN
        -- Another push sent for the same top-up (a retry after a lost answer).
        IF NOT p_success THEN
            RETURN 'already_settled';
        END IF;
        IF p_amount IS NOT NULL AND p_amount <> v_row.amount THEN
            RETURN 'amount_mismatch';
        END IF;
        INSERT INTO mpesa_transactions (user_id, kind, status, amount, phone_number, checkout_request_id,
                                        mpesa_receipt_number, completed_at, error_message)
        VALUES (v_user, 'topup', 'completed', v_row.amount, v_row.phone_number, p_checkout_request_id,
                p_receipt, now(), format('second STK push of top-up %s', v_row.id))
        RETURNING id INTO v_new;
        PERFORM update_user_balance(v_user, NULL, v_row.amount, 'topup', v_new);
        RETURN 'credited';
    END IF;

    IF v_row.status = 'completed' THEN
        RETURN 'already_settled';
    END IF;
    IF v_row.status = 'failed' AND NOT p_success THEN
        RETURN 'already_settled';
    END IF;
    IF p_success THEN
        IF p_amount IS NOT NULL AND p_amount <> v_row.amount THEN
            RETURN 'amount_mismatch';
        END IF;
        UPDATE mpesa_transactions
        SET status = 'completed', mpesa_receipt_number = p_receipt, completed_at = now(), error_message = NULL
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

-- The old entry point (callbacks without a top-up id, STK query answers) keeps its signature.
CREATE OR REPLACE FUNCTION public.ledger_credit_topup(p_checkout_request_id TEXT, p_success BOOLEAN,
    p_amount NUMERIC, p_receipt TEXT, p_error TEXT) RETURNS TEXT
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
BEGIN
    RETURN ledger_credit_stk(NULL, p_checkout_request_id, p_success, p_amount, p_receipt, p_error);
END;
$$;

REVOKE EXECUTE ON FUNCTION public.ledger_credit_stk(UUID, TEXT, BOOLEAN, NUMERIC, TEXT, TEXT) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION public.ledger_credit_stk(UUID, TEXT, BOOLEAN, NUMERIC, TEXT, TEXT) FROM authenticated;
