-- The row level security policies of public.voice_session_openings, applied again whenever this file changes (edit them
-- here). Whether row level security is on is the table's, in the numbered files.

-- From 0025_transcript_export.sql.
DROP POLICY IF EXISTS "Users can view own session openings" ON public.voice_session_openings;
CREATE POLICY "Users can view own session openings" ON public.voice_session_openings
    FOR SELECT TO authenticated USING (auth.uid() = user_id);
