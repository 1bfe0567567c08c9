-- public.ledger_cancel_or_refusal: its current definition, applied again whenever this file changes (edit it
-- here). Its history, in numbered files: 0017_refusals_as_results.sql.

CREATE OR REPLACE FUNCTION public.ledger_cancel_or_refusal(p_transaction_id UUID, p_user_id UUID, p_reason TEXT,
    OUT refusal_state TEXT, OUT refusal TEXT, OUT refusal_detail TEXT, OUT tx public.transactions)
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
BEGIN
    tx := ledger_cancel(p_transaction_id, p_user_id, p_reason);
EXCEPTION WHEN SQLSTATE 'OPL01' OR check_violation OR foreign_key_violation OR unique_violation
               OR data_exception THEN
    GET STACKED DIAGNOSTICS refusal_state = RETURNED_SQLSTATE, refusal = MESSAGE_TEXT,
                            refusal_detail = PG_EXCEPTION_DETAIL;
    refusal_detail := nullif(refusal_detail, '');
    tx := NULL;
END;
$$;

REVOKE ALL ON FUNCTION public.ledger_cancel_or_refusal(uuid, uuid, text) FROM PUBLIC, anon, authenticated;
