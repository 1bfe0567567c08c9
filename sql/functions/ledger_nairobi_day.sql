-- public.ledger_nairobi_day: its current definition, applied again whenever this file changes (edit it here).
-- Its history, in numbered files: 0003_ledger.sql.

-- The calendar day of p_now in Nairobi (the limits' day and month).
CREATE OR REPLACE FUNCTION public.ledger_nairobi_day(p_now TIMESTAMPTZ) RETURNS DATE
LANGUAGE sql IMMUTABLE SET search_path = public, pg_temp AS $$
    SELECT (p_now AT TIME ZONE 'Africa/Nairobi')::date
$$;

REVOKE ALL ON FUNCTION public.ledger_nairobi_day(timestamp with time zone) FROM PUBLIC, anon, authenticated;
