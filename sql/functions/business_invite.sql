-- public.business_invite: its current definition, applied again whenever this file changes (edit it
-- here). Its history, in numbered files: 0028_business.sql.

-- The owner or an admin invites a phone with a role. Only the owner makes admins; nobody makes an owner.
-- Limits apply to spenders (a spender's daily limit > 0 is needed to pay at all).
CREATE OR REPLACE FUNCTION public.business_invite(p_business UUID, p_by UUID, p_phone TEXT, p_role TEXT,
    p_daily_limit NUMERIC, p_approval_amount NUMERIC, p_now TIMESTAMPTZ DEFAULT NULL)
RETURNS public.business_members
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    v_now TIMESTAMPTZ := coalesce(p_now, now());
    v_me business_members%ROWTYPE := business_manager(p_business, p_by, v_now);
    v_row business_members%ROWTYPE;
BEGIN
    IF p_role IS NULL OR p_role NOT IN ('admin', 'spender', 'viewer') THEN
        PERFORM ledger_fail('invalid_role', 'a member is an admin, a spender or a viewer');
    END IF;
    IF p_role = 'admin' AND v_me.role <> 'owner' THEN
        PERFORM ledger_fail('forbidden_role', 'only the owner makes admins');
    END IF;
    PERFORM 1 FROM businesses WHERE id = p_business FOR NO KEY UPDATE;  -- invitations one at a time
    IF (SELECT count(*) FROM business_members WHERE business_id = p_business AND removed_at IS NULL) >= 200 THEN
        PERFORM ledger_fail('too_many_members', 'at most 200 members');
    END IF;
    INSERT INTO business_members (business_id, phone, user_id, role, daily_limit, approval_amount, invited_by,
                                  created_at, updated_at)
    VALUES (p_business, p_phone, (SELECT id FROM profiles WHERE phone_number = p_phone), p_role,
            coalesce(p_daily_limit, 0), coalesce(p_approval_amount, 0), p_by, v_now, v_now)
    RETURNING * INTO v_row;
    RETURN v_row;
EXCEPTION WHEN unique_violation THEN
    PERFORM ledger_fail('already_member', 'that phone is already a member');
    RETURN NULL;
END;
$$;

REVOKE ALL ON FUNCTION public.business_invite(uuid, uuid, text, text, numeric, numeric, timestamp with time zone) FROM PUBLIC, anon, authenticated;
