-- public.business_member_change: its current definition, applied again whenever this file changes (edit it
-- here). Its history, in numbered files: 0028_business.sql.

-- Changes a member's role or limits. The owner's row is not changed here; an admin changes spenders and
-- viewers only, and makes no admin; nobody changes their own row (a spender cannot raise their own limit,
-- an admin cannot make themselves more).
CREATE OR REPLACE FUNCTION public.business_member_change(p_business UUID, p_by UUID, p_member UUID,
    p_role TEXT, p_daily_limit NUMERIC, p_approval_amount NUMERIC, p_now TIMESTAMPTZ DEFAULT NULL)
RETURNS public.business_members
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    v_now TIMESTAMPTZ := coalesce(p_now, now());
    v_me business_members%ROWTYPE := business_manager(p_business, p_by, v_now);
    v_row business_members%ROWTYPE;
BEGIN
    SELECT * INTO v_row FROM business_members
    WHERE id = p_member AND business_id = p_business AND removed_at IS NULL FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM ledger_fail('not_found', 'no such member');
    END IF;
    IF v_row.user_id IS NOT DISTINCT FROM p_by OR v_row.role = 'owner' THEN
        PERFORM ledger_fail('forbidden_role', 'the owner and your own membership are not changed here');
    END IF;
    IF p_role IS NOT NULL AND p_role NOT IN ('admin', 'spender', 'viewer') THEN
        PERFORM ledger_fail('invalid_role', 'a member is an admin, a spender or a viewer');
    END IF;
    IF v_me.role <> 'owner' AND (v_row.role = 'admin' OR p_role = 'admin') THEN
        PERFORM ledger_fail('forbidden_role', 'only the owner changes admins');
    END IF;
    UPDATE business_members
    SET role = coalesce(p_role, role), daily_limit = coalesce(p_daily_limit, daily_limit),
        approval_amount = coalesce(p_approval_amount, approval_amount), updated_at = v_now
    WHERE id = v_row.id
    RETURNING * INTO v_row;
    RETURN v_row;
END;
$$;

REVOKE ALL ON FUNCTION public.business_member_change(uuid, uuid, uuid, text, numeric, numeric, timestamp with time zone) FROM PUBLIC, anon, authenticated;
