-- public.api_key_create: its current definition, applied again whenever this file changes (edit it here). Its
-- history, in numbered files: 0026_api_keys.sql, 0036_api_key_holes.sql.

-- A new key. `pay` needs the evidence of a correct PIN checked in this database transaction.
CREATE OR REPLACE FUNCTION public.api_key_create(
    p_user_id UUID, p_name TEXT, p_scopes TEXT[], p_hash TEXT, p_prefix TEXT, p_daily_limit NUMERIC,
    p_rate_limit INT, p_now TIMESTAMPTZ DEFAULT NULL
) RETURNS public.api_keys
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    v_now TIMESTAMPTZ := coalesce(p_now, now());
    v_row api_keys%ROWTYPE;
BEGIN
    PERFORM 1 FROM profiles WHERE id = p_user_id FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM ledger_fail('user_not_found', 'no such user');
    END IF;
    IF NOT api_access_allowed(p_user_id, v_now) THEN
        PERFORM ledger_fail('plan_required', 'API access comes with the Pro and Business plans');
    END IF;
    -- At most 50 live keys (a stolen user token, which needs no PIN for a read key, makes no more).
    IF (SELECT count(*) FROM api_keys WHERE user_id = p_user_id AND revoked_at IS NULL) >= 50 THEN
        PERFORM ledger_fail('too_many_keys', 'at most 50 live keys: revoke one first');
    END IF;
    IF 'pay' = ANY (p_scopes) AND NOT ledger_take_pin_evidence(p_user_id) THEN
        PERFORM ledger_fail('pin_required', 'a key that pays needs the PIN');
    END IF;
    INSERT INTO api_keys (user_id, name, scopes, key_hash, prefix, daily_limit, rate_limit_per_minute,
                          created_at)
    VALUES (p_user_id, p_name, (SELECT array_agg(DISTINCT s ORDER BY s) FROM unnest(p_scopes) s), p_hash,
            p_prefix, p_daily_limit, p_rate_limit, v_now)
    RETURNING * INTO v_row;
    INSERT INTO api_key_events (user_id, key_id, event, detail, at)
    VALUES (p_user_id, v_row.id, 'created', jsonb_build_object('scopes', v_row.scopes, 'name', p_name), v_now);
    RETURN v_row;
END;
$$;

REVOKE ALL ON FUNCTION public.api_key_create(uuid, text, text[], text, text, numeric, integer, timestamp with time zone) FROM PUBLIC, anon, authenticated;
