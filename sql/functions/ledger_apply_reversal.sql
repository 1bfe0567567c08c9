-- public.ledger_apply_reversal: its current definition, applied again whenever this file changes (edit it
-- here). Its history, in numbered files: 0021_daraja_second_review.sql.

-- The reversal's result: completed credits the sender the payout's amount once (backed by the reversal's
-- receipt: invariant 6), failed credits nothing. A second result changes nothing.
CREATE OR REPLACE FUNCTION public.ledger_apply_reversal(p_reversal_id UUID, p_success BOOLEAN, p_receipt TEXT,
    p_code TEXT, p_desc TEXT) RETURNS TEXT
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    v_rev mpesa_reversals%ROWTYPE;
    v_user UUID;
BEGIN
    SELECT user_id INTO v_user FROM transactions
    WHERE id = (SELECT transaction_id FROM mpesa_reversals WHERE id = p_reversal_id);
    IF v_user IS NULL THEN
        RETURN 'unknown_id';
    END IF;
    PERFORM 1 FROM profiles WHERE id = v_user FOR UPDATE;
    SELECT * INTO v_rev FROM mpesa_reversals WHERE id = p_reversal_id FOR UPDATE;
    IF v_rev.status IN ('completed', 'failed') THEN
        RETURN 'already_settled';
    END IF;
    IF p_success AND coalesce(btrim(p_receipt), '') = '' THEN
        RETURN 'malformed';  -- a completed reversal without its receipt backs no credit
    END IF;
    UPDATE mpesa_reversals
    SET status = CASE WHEN p_success THEN 'completed' ELSE 'failed' END, reversal_receipt = p_receipt,
        result_code = p_code, result_desc = p_desc, completed_at = now()
    WHERE id = p_reversal_id;
    IF NOT p_success THEN
        RETURN 'failed';
    END IF;
    PERFORM update_user_balance(v_user, v_rev.transaction_id, v_rev.amount, 'reversal');
    RETURN 'reversed';
END;
$$;

REVOKE ALL ON FUNCTION public.ledger_apply_reversal(uuid, boolean, text, text, text) FROM PUBLIC, anon, authenticated;
