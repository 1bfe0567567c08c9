-- public.api_key_use: its current definition, applied again whenever this file changes (edit it here). Its
-- history, in numbered files: 0026_api_keys.sql.

-- The key of a hash, allowed `p_scope` now: not revoked, the owner's plan has API access, within its rate
-- limit. Counts the use and records it. Refusals: invalid_api_key, plan_required, insufficient_scope,
-- rate_limited.
CREATE OR REPLACE FUNCTION public.api_key_use(p_hash TEXT, p_scope TEXT, p_now TIMESTAMPTZ DEFAULT NULL)
RETURNS public.api_keys
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    v_now TIMESTAMPTZ := coalesce(p_now, now());
    v_key api_keys%ROWTYPE;
BEGIN
    SELECT * INTO v_key FROM api_keys WHERE key_hash = p_hash FOR UPDATE;
    IF NOT FOUND OR v_key.revoked_at IS NOT NULL THEN
        PERFORM ledger_fail('invalid_api_key', 'the API key is not valid');
    END IF;
    IF NOT api_access_allowed(v_key.user_id, v_now) THEN
        PERFORM ledger_fail('plan_required', 'API access comes with the Pro and Business plans');
    END IF;
    IF NOT p_scope = ANY (v_key.scopes) THEN
        PERFORM ledger_fail('insufficient_scope', format('this key lacks the %s scope', p_scope));
    END IF;
    IF v_key.window_start IS NULL OR v_now >= v_key.window_start + interval '1 minute' THEN
        v_key.window_start := date_trunc('minute', v_now);
        v_key.window_count := 0;
    END IF;
    IF v_key.window_count >= v_key.rate_limit_per_minute THEN
        PERFORM ledger_fail('rate_limited', 'this key made too many requests this minute');
    END IF;
    UPDATE api_keys SET window_start = v_key.window_start, window_count = v_key.window_count + 1,
                        last_used_at = v_now
    WHERE id = v_key.id
    RETURNING * INTO v_key;
    RETURN v_key;
END;
$$;

REVOKE ALL ON FUNCTION public.api_key_use(text, text, timestamp with time zone) FROM PUBLIC, anon, authenticated;
