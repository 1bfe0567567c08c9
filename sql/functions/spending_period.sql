-- public.spending_period: its current definition, applied again whenever this file changes (edit it here).
-- Its history, in numbered files: 0023_plans.sql.

-- The instants a period covers, in Africa/Nairobi time (weeks start on Monday), and the period before it.
CREATE OR REPLACE FUNCTION public.spending_period(p_period TEXT, p_now TIMESTAMPTZ DEFAULT now(),
    OUT starts TIMESTAMPTZ, OUT ends TIMESTAMPTZ, OUT prev_starts TIMESTAMPTZ)
LANGUAGE plpgsql STABLE SET search_path = public, pg_temp AS $$
DECLARE
    v_local TIMESTAMP := p_now AT TIME ZONE 'Africa/Nairobi';
    v_start TIMESTAMP;
    v_unit INTERVAL;
BEGIN
    CASE p_period
        WHEN 'today' THEN v_start := date_trunc('day', v_local); v_unit := '1 day';
        WHEN 'yesterday' THEN v_start := date_trunc('day', v_local) - interval '1 day'; v_unit := '1 day';
        WHEN 'this_week' THEN v_start := date_trunc('week', v_local); v_unit := '1 week';
        WHEN 'last_week' THEN v_start := date_trunc('week', v_local) - interval '1 week'; v_unit := '1 week';
        WHEN 'this_month' THEN v_start := date_trunc('month', v_local); v_unit := '1 month';
        WHEN 'last_month' THEN v_start := date_trunc('month', v_local) - interval '1 month'; v_unit := '1 month';
        WHEN 'this_year' THEN v_start := date_trunc('year', v_local); v_unit := '1 year';
        ELSE RAISE EXCEPTION 'unknown period %', p_period USING ERRCODE = 'invalid_parameter_value';
    END CASE;
    starts := v_start AT TIME ZONE 'Africa/Nairobi';
    ends := (v_start + v_unit) AT TIME ZONE 'Africa/Nairobi';
    prev_starts := (v_start - v_unit) AT TIME ZONE 'Africa/Nairobi';
END;
$$;

REVOKE ALL ON FUNCTION public.spending_period(text, timestamp with time zone) FROM PUBLIC, anon, authenticated;
