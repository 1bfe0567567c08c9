-- public.trusted_payee_remove: its current definition, applied again whenever this file changes (edit it
-- here). Its history, in numbered files: 0026_api_keys.sql.

CREATE OR REPLACE FUNCTION public.trusted_payee_remove(p_user_id UUID, p_payee_id UUID, p_now TIMESTAMPTZ DEFAULT NULL)
RETURNS BOOLEAN
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    v_phone TEXT;
BEGIN
    DELETE FROM trusted_payees WHERE id = p_payee_id AND user_id = p_user_id RETURNING phone INTO v_phone;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    INSERT INTO api_key_events (user_id, event, detail, at)
    VALUES (p_user_id, 'payee_removed', jsonb_build_object('phone', v_phone), coalesce(p_now, now()));
    RETURN true;
END;
$$;

REVOKE ALL ON FUNCTION public.trusted_payee_remove(uuid, uuid, timestamp with time zone) FROM PUBLIC, anon, authenticated;
