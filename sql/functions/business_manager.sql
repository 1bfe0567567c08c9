-- public.business_manager: its current definition, applied again whenever this file changes (edit it
-- here). Its history, in numbered files: 0028_business.sql.

-- The caller's active membership if they may manage the business (owner or admin, plan with multi_user);
-- refuses otherwise. A stranger gets `not_found` (no oracle of which businesses exist).
-- Locks in the order every team request takes them: the person acting (their profile), then memberships,
-- then the wallet, then payments. The rows a manager writes name them (invited_by, removed_by, approved_by)
-- and so key-share their profile: taken after the membership, that waited on the same person's payment
-- holding the profile and waiting on the membership (a deadlock).
CREATE OR REPLACE FUNCTION public.business_manager(p_business UUID, p_user UUID, p_now TIMESTAMPTZ)
RETURNS public.business_members
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    v_me business_members%ROWTYPE;
BEGIN
    PERFORM 1 FROM profiles WHERE id = p_user FOR UPDATE;
    SELECT * INTO v_me FROM business_members
    WHERE business_id = p_business AND user_id = p_user AND removed_at IS NULL
    FOR SHARE;
    IF NOT FOUND THEN
        PERFORM ledger_fail('not_found', 'no such business');
    END IF;
    IF v_me.role NOT IN ('owner', 'admin') THEN
        PERFORM ledger_fail('forbidden_role', 'only the owner or an admin may do that');
    END IF;
    IF NOT business_plan_allows(p_business, p_now) THEN
        PERFORM ledger_fail('plan_required', 'business accounts come with the Business plan');
    END IF;
    RETURN v_me;
END;
$$;

REVOKE ALL ON FUNCTION public.business_manager(uuid, uuid, timestamp with time zone) FROM PUBLIC, anon, authenticated;
