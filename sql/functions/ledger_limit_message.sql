-- public.ledger_limit_message: its current definition, applied again whenever this file changes (edit it
-- here). Its history, in numbered files: 0003_ledger.sql.

CREATE OR REPLACE FUNCTION public.ledger_limit_message(p_code TEXT) RETURNS TEXT
LANGUAGE sql IMMUTABLE SET search_path = public, pg_temp AS $$
    SELECT CASE p_code
        WHEN 'monthly_limit' THEN 'your plan''s monthly number of transactions is used up'
        WHEN 'daily_limit' THEN 'at most KES ${max_daily_kes_text} a day'
        ELSE p_code END
$$;

REVOKE ALL ON FUNCTION public.ledger_limit_message(text) FROM PUBLIC, anon, authenticated;
