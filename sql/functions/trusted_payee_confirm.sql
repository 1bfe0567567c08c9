-- public.trusted_payee_confirm: its current definition, applied again whenever this file changes (edit it
-- here). Its history, in numbered files: 0026_api_keys.sql.

-- Adds (or renames) a trusted payee, confirmed by the evidence of a correct PIN in this transaction.
CREATE OR REPLACE FUNCTION public.trusted_payee_confirm(p_user_id UUID, p_phone TEXT, p_name TEXT,
                                             p_now TIMESTAMPTZ DEFAULT NULL)
RETURNS public.trusted_payees
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    v_now TIMESTAMPTZ := coalesce(p_now, now());
    v_row trusted_payees%ROWTYPE;
BEGIN
    PERFORM 1 FROM profiles WHERE id = p_user_id FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM ledger_fail('user_not_found', 'no such user');
    END IF;
    IF NOT ledger_take_pin_evidence(p_user_id) THEN
        PERFORM ledger_fail('pin_required', 'a trusted payee is confirmed with the PIN');
    END IF;
    INSERT INTO trusted_payees (user_id, phone, name, confirmed_at, created_at)
    VALUES (p_user_id, p_phone, p_name, v_now, v_now)
    ON CONFLICT (user_id, phone) DO UPDATE SET name = excluded.name, confirmed_at = excluded.confirmed_at
    RETURNING * INTO v_row;
    INSERT INTO api_key_events (user_id, event, detail, at)
    VALUES (p_user_id, 'payee_trusted', jsonb_build_object('phone', p_phone, 'name', p_name), v_now);
    RETURN v_row;
END;
$$;

REVOKE ALL ON FUNCTION public.trusted_payee_confirm(uuid, text, text, timestamp with time zone) FROM PUBLIC, anon, authenticated;
