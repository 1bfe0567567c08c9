-- The row level security policies of public.subscription_plans, applied again whenever this file changes (edit them
-- here). Whether row level security is on is the table's, in the numbered files.

-- From 0020_doors.sql.
DROP POLICY IF EXISTS "Plans are read by everyone" ON public.subscription_plans;
CREATE POLICY "Plans are read by everyone" ON public.subscription_plans FOR SELECT USING (true);
