-- The row level security policies of public.api_keys, applied again whenever this file changes (edit them
-- here). Whether row level security is on is the table's, in the numbered files.

-- From 0026_api_keys.sql.
DROP POLICY IF EXISTS "Users read own api keys" ON public.api_keys;
CREATE POLICY "Users read own api keys" ON public.api_keys FOR SELECT USING (auth.uid() = user_id);
