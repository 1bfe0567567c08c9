-- public.plan_features: its current definition, applied again whenever this file changes (edit it here). Its
-- history, in numbered files: 0023_plans.sql, 0028_business.sql.

-- The user's plan now (as ledger_user_terms picks it: the active subscription covering p_now, the latest
-- started first, else 'free') and the features it gives. A business wallet has its owner's plan.
CREATE OR REPLACE FUNCTION public.plan_features(p_user_id UUID, p_now TIMESTAMPTZ DEFAULT now())
RETURNS TABLE (plan TEXT, voice_receipts BOOLEAN, analytics BOOLEAN)
LANGUAGE sql STABLE SET search_path = public, pg_temp AS $$
    SELECT p.id,
           coalesce(p.features -> 'voice_receipts' = 'true'::jsonb, false),
           coalesce(p.features -> 'analytics' = 'true'::jsonb, false)
    FROM subscription_plans p
    WHERE p.id = coalesce((SELECT s.plan_type FROM subscriptions s
                           WHERE s.user_id = coalesce((SELECT b.owner_id FROM businesses b
                                                       WHERE b.id = p_user_id), p_user_id)
                             AND s.status = 'active'
                             AND p_now >= s.current_period_start AND p_now < s.current_period_end
                           ORDER BY s.current_period_start DESC
                           LIMIT 1), 'free')
$$;

REVOKE ALL ON FUNCTION public.plan_features(uuid, timestamp with time zone) FROM PUBLIC, anon, authenticated;
