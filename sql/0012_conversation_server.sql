-- The conversation server: ElevenLabs post-call transcripts kept against their voice session, and the
-- sweeper's two passes as functions that take rows with FOR UPDATE SKIP LOCKED, so several server processes
-- (and `ongea-pesa sweep`) can sweep at once: a row another sweeper or a live turn holds is left for the next
-- pass, nothing is done twice and no sweeper ever waits on (or deadlocks with) a turn.

CREATE TABLE public.voice_session_transcripts (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    voice_session_id UUID REFERENCES public.voice_sessions(id) ON DELETE CASCADE,
    user_id UUID REFERENCES auth.users(id) ON DELETE CASCADE,
    conversation_id TEXT NOT NULL,
    agent_id TEXT,
    event_type TEXT NOT NULL,
    transcript JSONB NOT NULL DEFAULT '[]'::jsonb,
    payload JSONB NOT NULL,
    event_timestamp TIMESTAMPTZ,
    received_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (conversation_id, event_type)
);
CREATE INDEX idx_voice_session_transcripts_session ON public.voice_session_transcripts (voice_session_id);
CREATE INDEX idx_voice_session_transcripts_user ON public.voice_session_transcripts (user_id);

-- Only the server's own role reads and writes transcripts; a user token gets nothing (not even its own: the
-- app has no use for the raw webhook body, and it may hold what other services said).
ALTER TABLE public.voice_session_transcripts ENABLE ROW LEVEL SECURITY;
REVOKE ALL ON public.voice_session_transcripts FROM PUBLIC;
REVOKE ALL ON public.voice_session_transcripts FROM authenticated;

-- Expires up to p_limit active sessions past expires_at and voids their pending proposals, in one
-- transaction. Returns the session ids it expired.
CREATE FUNCTION public.sweep_expire_sessions(p_limit INT DEFAULT 500)
RETURNS TABLE (expired_session_id TEXT)
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    v_session RECORD;
BEGIN
    FOR v_session IN
        SELECT id, session_id, user_id FROM voice_sessions
        WHERE status = 'active' AND expires_at <= now()
        ORDER BY expires_at
        LIMIT p_limit
        FOR UPDATE SKIP LOCKED
    LOOP
        UPDATE voice_sessions SET status = 'expired', ended_at = now() WHERE id = v_session.id;
        PERFORM ledger_cancel_session(v_session.session_id, v_session.user_id, 'session_expired');
        expired_session_id := v_session.session_id;
        RETURN NEXT;
    END LOOP;
END;
$$;

-- Voids up to p_limit pending proposals past their time to live. The proposal row and its owner's profile
-- are both taken with SKIP LOCKED (never waited for), so this cannot deadlock with a confirmation, which
-- locks the profile first; a skipped row is taken by the next pass. Returns how many it voided.
CREATE FUNCTION public.sweep_expire_proposals(p_limit INT DEFAULT 500) RETURNS INT
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    v_due RECORD;
    v_tx transactions%ROWTYPE;
    v_count INT := 0;
BEGIN
    FOR v_due IN
        SELECT id, user_id FROM transactions
        WHERE status = 'pending' AND expires_at <= now()
        ORDER BY expires_at
        LIMIT p_limit
        FOR UPDATE SKIP LOCKED
    LOOP
        PERFORM 1 FROM profiles WHERE id = v_due.user_id FOR UPDATE SKIP LOCKED;
        CONTINUE WHEN NOT FOUND;
        SELECT * INTO v_tx FROM transactions WHERE id = v_due.id;
        IF v_tx.status = 'pending' AND v_tx.expires_at <= now() THEN
            PERFORM ledger_void(v_tx, 'expired');
            v_count := v_count + 1;
        END IF;
    END LOOP;
    RETURN v_count;
END;
$$;

REVOKE EXECUTE ON FUNCTION public.sweep_expire_sessions(INT) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION public.sweep_expire_sessions(INT) FROM authenticated;
REVOKE EXECUTE ON FUNCTION public.sweep_expire_proposals(INT) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION public.sweep_expire_proposals(INT) FROM authenticated;
