-- The row level security policies of public.balance_history, applied again whenever this file changes (edit them
-- here). Whether row level security is on is the table's, in the numbered files.

-- From 0002_founding_schema.sql.
DROP POLICY IF EXISTS "Users can view own balance history" ON public.balance_history;
CREATE POLICY "Users can view own balance history" ON public.balance_history FOR SELECT USING (auth.uid() = user_id);

-- From 0028_business.sql.
DROP POLICY IF EXISTS "Members read the business history their role shows" ON public.balance_history;
CREATE POLICY "Members read the business history their role shows" ON public.balance_history FOR SELECT
    USING (business_reader_role(user_id) IN ('owner', 'admin', 'viewer'));
