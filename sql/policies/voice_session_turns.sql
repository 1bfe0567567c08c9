-- The row level security policies of public.voice_session_turns, applied again whenever this file changes (edit them
-- here). Whether row level security is on is the table's, in the numbered files.

-- From 0024_session_turns.sql.
DROP POLICY IF EXISTS "Users can view own session turns" ON public.voice_session_turns;
CREATE POLICY "Users can view own session turns" ON public.voice_session_turns
    FOR SELECT TO authenticated USING (auth.uid() = user_id);
