-- The row level security policies of public.mpesa_transactions, applied again whenever this file changes (edit them
-- here). Whether row level security is on is the table's, in the numbered files.

-- From 0002_founding_schema.sql.
DROP POLICY IF EXISTS "Users can view own mpesa transactions" ON public.mpesa_transactions;
CREATE POLICY "Users can view own mpesa transactions" ON public.mpesa_transactions FOR SELECT USING (auth.uid() = user_id);
