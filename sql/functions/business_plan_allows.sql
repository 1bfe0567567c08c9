-- public.business_plan_allows: its current definition, applied again whenever this file changes (edit it
-- here). Its history, in numbered files: 0028_business.sql.

-- Whether the business's owner is on a plan with `multi_user` now: without it the team cannot pay or be
-- managed (the owner keeps reading).
CREATE OR REPLACE FUNCTION public.business_plan_allows(p_business UUID, p_now TIMESTAMPTZ)
RETURNS BOOLEAN
LANGUAGE sql STABLE SET search_path = public, pg_temp AS $$
    SELECT coalesce((SELECT p.features -> 'multi_user' = 'true'::jsonb
                     FROM businesses b, plan_features(b.owner_id, p_now) f, subscription_plans p
                     WHERE b.id = p_business AND p.id = f.plan), false)
$$;

REVOKE ALL ON FUNCTION public.business_plan_allows(uuid, timestamp with time zone) FROM PUBLIC, anon, authenticated;
