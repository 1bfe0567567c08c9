-- public.ledger_limit_refusal: its current definition, applied again whenever this file changes (edit it
-- here). Its history, in numbered files: 0003_ledger.sql.

-- The limit a payment would break ('monthly_limit' | 'daily_limit'), or NULL. Call with the profile row
-- locked: the usage then includes every confirmation of this user committed before.
CREATE OR REPLACE FUNCTION public.ledger_limit_refusal(p_user_id UUID, p_amount NUMERIC, p_monthly_limit INT,
    p_now TIMESTAMPTZ) RETURNS TEXT
LANGUAGE plpgsql STABLE SET search_path = public, pg_temp AS $$
DECLARE
    v_today DATE := ledger_nairobi_day(p_now);
    v_amount NUMERIC;
    v_month INT;
BEGIN
    IF p_monthly_limit IS NOT NULL THEN
        SELECT coalesce(sum(confirmed_count), 0) INTO v_month FROM ledger_usage
        WHERE user_id = p_user_id AND day >= date_trunc('month', v_today)::date AND day <= v_today;
        IF v_month >= p_monthly_limit THEN
            RETURN 'monthly_limit';
        END IF;
    END IF;
    SELECT confirmed_amount INTO v_amount FROM ledger_usage WHERE user_id = p_user_id AND day = v_today;
    IF coalesce(v_amount, 0) + p_amount > ${max_daily_kes} THEN
        RETURN 'daily_limit';
    END IF;
    RETURN NULL;
END;
$$;

REVOKE ALL ON FUNCTION public.ledger_limit_refusal(uuid, numeric, integer, timestamp with time zone) FROM PUBLIC, anon, authenticated;
