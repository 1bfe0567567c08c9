-- The row level security policies of public.api_key_events, applied again whenever this file changes (edit them
-- here). Whether row level security is on is the table's, in the numbered files.

-- From 0026_api_keys.sql.
DROP POLICY IF EXISTS "Users read own api key events" ON public.api_key_events;
CREATE POLICY "Users read own api key events" ON public.api_key_events FOR SELECT USING (auth.uid() = user_id);
