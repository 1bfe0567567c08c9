-- The row level security policies of public.mpesa_transactions, applied again whenever this file changes (edit them
-- here). Whether row level security is on is the table's, in the numbered files.

-- From 0002_founding_schema.sql.
DROP POLICY IF EXISTS "Users can view own mpesa transactions" ON public.mpesa_transactions;
CREATE POLICY "Users can view own mpesa transactions" ON public.mpesa_transactions FOR SELECT USING (auth.uid() = user_id);

-- Since 0028_business.sql's business accounts: a business wallet's top-ups (`user_id` is the business), for
-- the members who read its payments, when the server names the wallet (`ongea.wallet`, as for its payments):
-- `GET /v1/topups/{id}` of a business top-up.
DROP POLICY IF EXISTS "Members read the business top-ups their role shows" ON public.mpesa_transactions;
CREATE POLICY "Members read the business top-ups their role shows" ON public.mpesa_transactions FOR SELECT
    USING (business_reader_role(user_id) IN ('owner', 'admin', 'viewer'));
