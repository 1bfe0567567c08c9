-- public.idempotency_keys_prune: its current definition, applied again whenever this file changes (edit it
-- here). Its history, in numbered files: 0026_api_keys.sql.

-- Idempotency keys past their 24 hours (the sweeper may call this; api_pay also replaces an expired one).
CREATE OR REPLACE FUNCTION public.idempotency_keys_prune(p_now TIMESTAMPTZ DEFAULT NULL) RETURNS INT
LANGUAGE sql SET search_path = public, pg_temp AS $$
    WITH gone AS (DELETE FROM idempotency_keys WHERE expires_at <= coalesce(p_now, now()) RETURNING 1)
    SELECT count(*)::int FROM gone
$$;

REVOKE ALL ON FUNCTION public.idempotency_keys_prune(timestamp with time zone) FROM PUBLIC, anon, authenticated;
