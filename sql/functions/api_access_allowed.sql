-- public.api_access_allowed: its current definition, applied again whenever this file changes (edit it here).
-- Its history, in numbered files: 0026_api_keys.sql.

CREATE OR REPLACE FUNCTION public.api_access_allowed(p_user_id UUID, p_now TIMESTAMPTZ) RETURNS BOOLEAN
LANGUAGE sql STABLE SET search_path = public, pg_temp AS $$
    SELECT coalesce(p.features -> 'api_access' = 'true'::jsonb, false)
    FROM subscription_plans p
    WHERE p.id = (SELECT f.plan FROM plan_features(p_user_id, p_now) f)
$$;

REVOKE ALL ON FUNCTION public.api_access_allowed(uuid, timestamp with time zone) FROM PUBLIC, anon, authenticated;
