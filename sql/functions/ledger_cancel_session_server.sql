-- public.ledger_cancel_session_server: its current definition, applied again whenever this file changes (edit
-- it here). Its history, in numbered files: 0008_money_in.sql.

-- Server side only (the expiry sweeper): every pending proposal of the session, whoever's.
CREATE OR REPLACE FUNCTION public.ledger_cancel_session_server(p_session_id TEXT, p_reason TEXT DEFAULT 'session_ended')
RETURNS INT
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    v_user UUID;
    v_count INT := 0;
BEGIN
    FOR v_user IN
        SELECT DISTINCT user_id FROM transactions WHERE status = 'pending' AND session_id = p_session_id
        ORDER BY user_id
    LOOP
        v_count := v_count + ledger_cancel_session(p_session_id, v_user, p_reason);
    END LOOP;
    RETURN v_count;
END;
$$;

REVOKE ALL ON FUNCTION public.ledger_cancel_session_server(text, text) FROM PUBLIC, anon, authenticated;
