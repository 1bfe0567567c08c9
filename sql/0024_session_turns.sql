-- Every turn of a voice session, kept by the server: what was heard (with the recogniser's confidence), what
-- was answered, the proposal on screen, the tap or PIN as a marker (never its digits) and the outcome. The
-- voice-button page reads them back after a reload (GET /v1/sessions/{id}/transcript), so what it shows is
-- what the server did; the same rows are enough to write a replay transcript later. Kept for
-- ONGEA_SESSION_TURN_RETENTION_DAYS, then removed by the sweeper.

CREATE TABLE public.voice_session_turns (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    voice_session_id UUID NOT NULL REFERENCES public.voice_sessions(id) ON DELETE CASCADE,
    session_id TEXT NOT NULL,
    user_id UUID NOT NULL REFERENCES auth.users(id) ON DELETE CASCADE,
    seq INT NOT NULL CHECK (seq >= 1),
    at TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- what the person did: an utterance (heard, asr_confidence), a tap (confirm/cancel) or a PIN (a marker)
    input_kind TEXT NOT NULL CHECK (input_kind IN ('utterance', 'tap', 'pin')),
    heard TEXT CHECK (heard IS NULL OR length(heard) <= 2000),
    asr_confidence NUMERIC(4, 3) CHECK (asr_confidence IS NULL OR asr_confidence BETWEEN 0 AND 1),
    tap TEXT CHECK (tap IS NULL OR tap IN ('confirm', 'cancel')),
    -- what the assistant did
    answered TEXT[] NOT NULL DEFAULT '{}',
    tool_calls JSONB NOT NULL DEFAULT '[]'::jsonb,
    proposal JSONB,
    outcome TEXT NOT NULL,
    asked TEXT,
    rejected TEXT,
    committed JSONB,
    balance NUMERIC(12, 2),
    language TEXT NOT NULL CHECK (language IN ('en', 'sw')),
    UNIQUE (voice_session_id, seq),
    -- a PIN is only ever a marker: nothing of what was typed is kept
    CHECK (input_kind <> 'pin' OR (heard IS NULL AND tap IS NULL)),
    CHECK (input_kind <> 'tap' OR tap IS NOT NULL)
);
CREATE INDEX idx_voice_session_turns_user ON public.voice_session_turns (user_id);
CREATE INDEX idx_voice_session_turns_at ON public.voice_session_turns (at);

-- A user reads the turns of their own sessions, nothing else; only the server writes.
ALTER TABLE public.voice_session_turns ENABLE ROW LEVEL SECURITY;
REVOKE ALL ON public.voice_session_turns FROM PUBLIC;
REVOKE ALL ON public.voice_session_turns FROM authenticated;
REVOKE ALL ON public.voice_session_turns FROM anon;
GRANT SELECT ON public.voice_session_turns TO authenticated;
CREATE POLICY "Users can view own session turns" ON public.voice_session_turns
    FOR SELECT TO authenticated USING (auth.uid() = user_id);
