-- public.ledger_revise_or_refusal: its current definition, applied again whenever this file changes (edit it
-- here). Its history, in numbered files: 0017_refusals_as_results.sql.

CREATE OR REPLACE FUNCTION public.ledger_revise_or_refusal(
    p_transaction_id UUID, p_user_id UUID, p_type TEXT, p_amount NUMERIC,
    p_phone TEXT, p_till TEXT, p_paybill TEXT, p_account TEXT, p_agent TEXT, p_store TEXT, p_bank_code TEXT,
    p_confidence_score INT, p_voice_command_text TEXT,
    p_now TIMESTAMPTZ, p_ttl_seconds INT,
    OUT refusal_state TEXT, OUT refusal TEXT, OUT refusal_detail TEXT, OUT tx public.transactions)
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
BEGIN
    tx := ledger_revise(p_transaction_id, p_user_id, p_type, p_amount, p_phone, p_till, p_paybill, p_account,
                        p_agent, p_store, p_bank_code, p_confidence_score, p_voice_command_text, p_now,
                        p_ttl_seconds);
EXCEPTION WHEN SQLSTATE 'OPL01' OR check_violation OR foreign_key_violation OR unique_violation
               OR data_exception THEN
    GET STACKED DIAGNOSTICS refusal_state = RETURNED_SQLSTATE, refusal = MESSAGE_TEXT,
                            refusal_detail = PG_EXCEPTION_DETAIL;
    refusal_detail := nullif(refusal_detail, '');
    tx := NULL;
END;
$$;

REVOKE ALL ON FUNCTION public.ledger_revise_or_refusal(uuid, uuid, text, numeric, text, text, text, text, text, text, text, integer, text, timestamp with time zone, integer) FROM PUBLIC, anon, authenticated;
