-- Voice sessions carry their conversation: the dialogue state (voice_server/dialogue/state.py, as JSON) is
-- stored on the session row and changed only under that row's lock (SELECT ... FOR UPDATE), one event at a
-- time, so any server process can serve any turn and a tap and a spoken yes arriving together commit once.

ALTER TABLE public.voice_sessions
    ADD COLUMN dialogue_state JSONB NOT NULL DEFAULT '{}'::jsonb,
    ADD COLUMN language TEXT NOT NULL DEFAULT 'en' CHECK (language IN ('en', 'sw')),
    ADD COLUMN turns INTEGER NOT NULL DEFAULT 0 CHECK (turns >= 0),
    ADD COLUMN last_turn_at TIMESTAMPTZ;

-- Sessions are minted by the server only. A row a user token could insert would carry a lifetime and a
-- dialogue state of the user's choosing (a forged "read back" of an amount below the PIN threshold, a session
-- that never expires), so the founding INSERT policy and privilege go; users keep reading their own rows.
DROP POLICY IF EXISTS "Users can create own sessions" ON public.voice_sessions;
REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON public.voice_sessions FROM authenticated;
REVOKE ALL ON public.voice_sessions FROM PUBLIC;
