-- public.api_key_revoke: its current definition, applied again whenever this file changes (edit it here). Its
-- history, in numbered files: 0026_api_keys.sql.

-- Revokes one of the user's keys at once (a second revocation changes nothing). False: no such key.
CREATE OR REPLACE FUNCTION public.api_key_revoke(p_user_id UUID, p_key_id UUID, p_now TIMESTAMPTZ DEFAULT NULL)
RETURNS BOOLEAN
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    v_now TIMESTAMPTZ := coalesce(p_now, now());
BEGIN
    UPDATE api_keys SET revoked_at = coalesce(revoked_at, v_now)
    WHERE id = p_key_id AND user_id = p_user_id;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    INSERT INTO api_key_events (user_id, key_id, event, at) VALUES (p_user_id, p_key_id, 'revoked', v_now);
    RETURN true;
END;
$$;

REVOKE ALL ON FUNCTION public.api_key_revoke(uuid, uuid, timestamp with time zone) FROM PUBLIC, anon, authenticated;
