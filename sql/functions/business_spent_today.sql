-- public.business_spent_today: its current definition, applied again whenever this file changes (edit it
-- here). Its history, in numbered files: 0028_business.sql.

-- What a member committed from the business today (Nairobi): their payments that reached processing and did
-- not fail, plus those waiting for approval; without p_except (the one being decided).
CREATE OR REPLACE FUNCTION public.business_spent_today(p_business UUID, p_member UUID, p_now TIMESTAMPTZ,
    p_except UUID) RETURNS NUMERIC
LANGUAGE sql STABLE SET search_path = public, pg_temp AS $$
    SELECT coalesce(sum(amount), 0) FROM transactions
    WHERE user_id = p_business AND made_by = p_member AND id IS DISTINCT FROM p_except
      AND ((status IN ('processing', 'completed')
            AND ledger_nairobi_day(confirmed_at) = ledger_nairobi_day(p_now))
           OR approval_state = 'awaiting')
$$;

REVOKE ALL ON FUNCTION public.business_spent_today(uuid, uuid, timestamp with time zone, uuid) FROM PUBLIC, anon, authenticated;
