-- The row level security policies of public.businesses, applied again whenever this file changes (edit them
-- here). Whether row level security is on is the table's, in the numbered files.

-- From 0028_business.sql.
DROP POLICY IF EXISTS "Members read their businesses" ON public.businesses;
CREATE POLICY "Members read their businesses" ON public.businesses FOR SELECT
    USING (business_member_role(id) IS NOT NULL);
