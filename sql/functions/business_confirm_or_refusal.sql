-- public.business_confirm_or_refusal: its current definition, applied again whenever this file changes (edit it
-- here). Its history, in numbered files: 0028_business.sql.

CREATE OR REPLACE FUNCTION public.business_confirm_or_refusal(
    p_transaction_id UUID, p_member UUID, p_version INT, p_voice_verified BOOLEAN, p_now TIMESTAMPTZ,
    OUT refusal_state TEXT, OUT refusal TEXT, OUT refusal_detail TEXT, OUT result JSONB)
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
BEGIN
    result := business_confirm(p_transaction_id, p_member, p_version, p_voice_verified, p_now);
EXCEPTION WHEN SQLSTATE 'OPL01' OR check_violation OR foreign_key_violation OR unique_violation
               OR data_exception THEN
    GET STACKED DIAGNOSTICS refusal_state = RETURNED_SQLSTATE, refusal = MESSAGE_TEXT,
                            refusal_detail = PG_EXCEPTION_DETAIL;
    refusal_detail := nullif(refusal_detail, '');
    result := NULL;
END;
$$;

REVOKE ALL ON FUNCTION public.business_confirm_or_refusal(uuid, uuid, integer, boolean, timestamp with time zone) FROM PUBLIC, anon, authenticated;
