-- public.business_member_role: its current definition, applied again whenever this file changes (edit it
-- here). Its history, in numbered files: 0028_business.sql.

-- The caller's role in a business (any wallet named or not), for the policies of the business tables.
CREATE OR REPLACE FUNCTION public.business_member_role(p_business UUID) RETURNS TEXT
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT m.role FROM public.business_members m
    WHERE m.business_id = p_business AND m.user_id = auth.uid() AND m.removed_at IS NULL
$$;

REVOKE ALL ON FUNCTION public.business_member_role(uuid) FROM PUBLIC, anon, authenticated;
-- The policies call it as the user.
GRANT EXECUTE ON FUNCTION public.business_member_role(uuid) TO authenticated;
