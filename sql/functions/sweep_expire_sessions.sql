-- public.sweep_expire_sessions: its current definition, applied again whenever this file changes (edit it
-- here). Its history, in numbered files: 0012_conversation_server.sql, 0028_business.sql.

-- Expires up to p_limit active sessions past expires_at and voids their pending proposals (on the wallet the
-- session speaks for), in one transaction. Returns the session ids it expired.
CREATE OR REPLACE FUNCTION public.sweep_expire_sessions(p_limit INT DEFAULT 500)
RETURNS TABLE (expired_session_id TEXT)
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    v_session RECORD;
BEGIN
    FOR v_session IN
        SELECT id, session_id, user_id, wallet_id FROM voice_sessions
        WHERE status = 'active' AND expires_at <= now()
        ORDER BY expires_at
        LIMIT p_limit
        FOR UPDATE SKIP LOCKED
    LOOP
        UPDATE voice_sessions SET status = 'expired', ended_at = now() WHERE id = v_session.id;
        PERFORM ledger_cancel_session(v_session.session_id, coalesce(v_session.wallet_id, v_session.user_id),
                                      'session_expired');
        expired_session_id := v_session.session_id;
        RETURN NEXT;
    END LOOP;
END;
$$;

REVOKE ALL ON FUNCTION public.sweep_expire_sessions(integer) FROM PUBLIC, anon, authenticated;
