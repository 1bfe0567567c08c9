-- Transcript export (`ongea-pesa transcripts export`): a kept conversation becomes a replay transcript.
--
-- 1. The agent's tool calls are turns too (`input_kind = 'tool'`, the tool's name and its parameters, never
--    a PIN: no tool carries one), and a receipt the assistant told when a payout settled (`'receipt'`, no
--    input) is kept, so a failed payout's "the money is back" is part of the conversation. `channel` says
--    whether the turn came over the WebSocket or the tools.
-- 2. What the user had when the session began (balance, plan, whether a PIN was set, contacts), written by
--    a trigger on the session's row, so every way of starting a session records it: the export's `user:`.

ALTER TABLE public.voice_session_turns DROP CONSTRAINT voice_session_turns_input_kind_check;
ALTER TABLE public.voice_session_turns ADD CONSTRAINT voice_session_turns_input_kind_check
    CHECK (input_kind IN ('utterance', 'tap', 'pin', 'tool', 'receipt'));
ALTER TABLE public.voice_session_turns
    ADD COLUMN channel TEXT NOT NULL DEFAULT 'ws' CHECK (channel IN ('ws', 'tools')),
    ADD COLUMN tool_name TEXT CHECK (tool_name IS NULL OR length(tool_name) <= 100),
    ADD COLUMN tool_parameters JSONB,
    ADD COLUMN cancelled BOOLEAN NOT NULL DEFAULT false;
ALTER TABLE public.voice_session_turns ADD CONSTRAINT voice_session_turns_tool_named
    CHECK (input_kind <> 'tool' OR tool_name IS NOT NULL);
ALTER TABLE public.voice_session_turns ADD CONSTRAINT voice_session_turns_receipt_no_input
    CHECK (input_kind <> 'receipt' OR (heard IS NULL AND tap IS NULL AND tool_name IS NULL));

CREATE TABLE public.voice_session_openings (
    voice_session_id UUID PRIMARY KEY REFERENCES public.voice_sessions(id) ON DELETE CASCADE,
    user_id UUID NOT NULL REFERENCES auth.users(id) ON DELETE CASCADE,
    at TIMESTAMPTZ NOT NULL DEFAULT now(),
    wallet_balance NUMERIC(12, 2) NOT NULL,
    plan TEXT NOT NULL,
    pin_set BOOLEAN NOT NULL,
    language TEXT,
    contacts JSONB NOT NULL DEFAULT '[]'::jsonb
);
CREATE INDEX idx_voice_session_openings_user ON public.voice_session_openings (user_id);
CREATE INDEX idx_voice_session_openings_at ON public.voice_session_openings (at);

CREATE FUNCTION public.record_session_opening() RETURNS TRIGGER
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    INSERT INTO voice_session_openings (voice_session_id, user_id, at, wallet_balance, plan, pin_set, language,
                                        contacts)
    SELECT NEW.id, NEW.user_id, coalesce(NEW.created_at, now()), coalesce(p.wallet_balance, 0),
           (SELECT f.plan FROM plan_features(NEW.user_id, coalesce(NEW.created_at, now())) f),
           p.pin_hash IS NOT NULL, NEW.language,
           coalesce((SELECT jsonb_agg(jsonb_build_object('name', c.name, 'phone_number', c.phone_number,
                                                         'nickname', c.nickname)
                                      ORDER BY c.favorite DESC NULLS LAST, c.name, c.id)
                     FROM contacts c WHERE c.user_id = NEW.user_id), '[]'::jsonb)
    FROM profiles p WHERE p.id = NEW.user_id
    ON CONFLICT (voice_session_id) DO NOTHING;
    RETURN NEW;
END
$$;
REVOKE EXECUTE ON FUNCTION public.record_session_opening() FROM PUBLIC;

CREATE TRIGGER voice_sessions_record_opening AFTER INSERT ON public.voice_sessions
    FOR EACH ROW EXECUTE FUNCTION public.record_session_opening();

-- A user reads the opening of their own sessions; only the server writes.
ALTER TABLE public.voice_session_openings ENABLE ROW LEVEL SECURITY;
REVOKE ALL ON public.voice_session_openings FROM PUBLIC;
REVOKE ALL ON public.voice_session_openings FROM authenticated;
REVOKE ALL ON public.voice_session_openings FROM anon;
GRANT SELECT ON public.voice_session_openings TO authenticated;
CREATE POLICY "Users can view own session openings" ON public.voice_session_openings
    FOR SELECT TO authenticated USING (auth.uid() = user_id);
