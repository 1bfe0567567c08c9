-- public.business_member_active: its current definition, applied again whenever this file changes (edit it
-- here). Its history, in numbered files: 0028_business.sql.

-- The active membership of p_user in p_business, locked (FOR UPDATE: the member's daily limit is counted
-- under it; removal takes the same lock), or NULL.
CREATE OR REPLACE FUNCTION public.business_member_active(p_business UUID, p_user UUID)
RETURNS public.business_members
LANGUAGE sql SET search_path = public, pg_temp AS $$
    SELECT * FROM business_members
    WHERE business_id = p_business AND user_id = p_user AND removed_at IS NULL
    FOR UPDATE
$$;

REVOKE ALL ON FUNCTION public.business_member_active(uuid, uuid) FROM PUBLIC, anon, authenticated;
