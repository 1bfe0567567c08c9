-- public.ledger_credit_topup: its current definition, applied again whenever this file changes (edit it
-- here). Its history, in numbered files: 0003_ledger.sql (dropped in 0008_money_in.sql), 0008_money_in.sql.

CREATE OR REPLACE FUNCTION public.ledger_credit_topup(p_checkout_request_id TEXT, p_success BOOLEAN,
    p_amount NUMERIC, p_receipt TEXT, p_error TEXT) RETURNS TEXT
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
BEGIN
    RETURN ledger_credit_stk(NULL, p_checkout_request_id, p_success, p_amount, p_receipt, p_error, false);
END;
$$;

REVOKE ALL ON FUNCTION public.ledger_credit_topup(text, boolean, numeric, text, text) FROM PUBLIC, anon, authenticated;
