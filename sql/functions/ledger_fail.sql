-- public.ledger_fail: its current definition, applied again whenever this file changes (edit it here). Its
-- history, in numbered files: 0003_ledger.sql.

CREATE OR REPLACE FUNCTION public.ledger_fail(p_code TEXT, p_detail TEXT) RETURNS VOID
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
BEGIN
    RAISE EXCEPTION USING ERRCODE = 'OPL01', MESSAGE = p_code, DETAIL = p_detail;
END;
$$;

REVOKE ALL ON FUNCTION public.ledger_fail(text, text) FROM PUBLIC, anon, authenticated;
