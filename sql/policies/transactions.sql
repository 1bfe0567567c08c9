-- The row level security policies of public.transactions, applied again whenever this file changes (edit them
-- here). Whether row level security is on is the table's, in the numbered files.

-- From 0002_founding_schema.sql.
DROP POLICY IF EXISTS "Users can insert own transactions" ON public.transactions;
CREATE POLICY "Users can insert own transactions" ON public.transactions FOR INSERT WITH CHECK (auth.uid() = user_id);

-- From 0002_founding_schema.sql.
DROP POLICY IF EXISTS "Users can view own transactions" ON public.transactions;
CREATE POLICY "Users can view own transactions" ON public.transactions FOR SELECT USING (auth.uid() = user_id);

-- From 0028_business.sql.
DROP POLICY IF EXISTS "Members read the business payments their role shows" ON public.transactions;
CREATE POLICY "Members read the business payments their role shows" ON public.transactions FOR SELECT
    USING (business_reader_role(user_id) IN ('owner', 'admin', 'viewer')
           OR (business_reader_role(user_id) = 'spender' AND made_by = auth.uid()));
