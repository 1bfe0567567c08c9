-- The row level security policies of public.business_members, applied again whenever this file changes (edit them
-- here). Whether row level security is on is the table's, in the numbered files.

-- From 0028_business.sql.
-- A member reads their own membership; the owner, admins and viewers read the whole team.
DROP POLICY IF EXISTS "Members read their team" ON public.business_members;
CREATE POLICY "Members read their team" ON public.business_members FOR SELECT
    USING (user_id = auth.uid() OR business_member_role(business_id) IN ('owner', 'admin', 'viewer'));
