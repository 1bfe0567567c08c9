-- public.ledger_cancel_session: its current definition, applied again whenever this file changes (edit it
-- here). Its history, in numbered files: 0003_ledger.sql (dropped in 0008_money_in.sql), 0008_money_in.sql.

CREATE OR REPLACE FUNCTION public.ledger_cancel_session(p_session_id TEXT, p_user_id UUID,
    p_reason TEXT DEFAULT 'session_ended') RETURNS INT
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    v_due RECORD;
    v_tx transactions%ROWTYPE;
    v_count INT := 0;
BEGIN
    IF p_user_id IS NULL THEN
        PERFORM ledger_fail('invalid_input', 'whose session is it?');
    END IF;
    PERFORM 1 FROM profiles WHERE id = p_user_id FOR UPDATE;
    FOR v_due IN
        SELECT id FROM transactions
        WHERE status = 'pending' AND session_id = p_session_id AND user_id = p_user_id ORDER BY id
    LOOP
        SELECT * INTO v_tx FROM transactions WHERE id = v_due.id FOR UPDATE;
        IF v_tx.status = 'pending' THEN
            PERFORM ledger_void(v_tx, p_reason);
            v_count := v_count + 1;
        END IF;
    END LOOP;
    RETURN v_count;
END;
$$;

REVOKE ALL ON FUNCTION public.ledger_cancel_session(text, uuid, text) FROM PUBLIC, anon, authenticated;
