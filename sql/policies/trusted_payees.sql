-- The row level security policies of public.trusted_payees, applied again whenever this file changes (edit them
-- here). Whether row level security is on is the table's, in the numbered files.

-- From 0026_api_keys.sql.
DROP POLICY IF EXISTS "Users read own trusted payees" ON public.trusted_payees;
CREATE POLICY "Users read own trusted payees" ON public.trusted_payees FOR SELECT USING (auth.uid() = user_id);
