-- public.business_member_remove: its current definition, applied again whenever this file changes (edit it
-- here). Its history, in numbered files: 0028_business.sql.

-- Removes a member at once: their voice sessions for this business end (ws_generation moves on, so every
-- process closes their open WebSockets), their proposals and payments waiting for approval are voided (the
-- holds released). The owner is not removed; an admin removes spenders and viewers; anyone may leave.
CREATE OR REPLACE FUNCTION public.business_member_remove(p_business UUID, p_by UUID, p_member UUID,
    p_now TIMESTAMPTZ DEFAULT NULL) RETURNS public.business_members
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    v_now TIMESTAMPTZ := coalesce(p_now, now());
    v_me business_members%ROWTYPE;
    v_row business_members%ROWTYPE;
    v_tx transactions%ROWTYPE;
BEGIN
    -- The person acting first, then their membership, then the one removed (business_manager's order).
    PERFORM 1 FROM profiles WHERE id = p_by FOR UPDATE;
    SELECT * INTO v_row FROM business_members
    WHERE id = p_member AND business_id = p_business AND removed_at IS NULL;
    IF FOUND AND v_row.user_id IS DISTINCT FROM p_by THEN
        v_me := business_manager(p_business, p_by, v_now);
    END IF;
    SELECT * INTO v_row FROM business_members
    WHERE id = p_member AND business_id = p_business AND removed_at IS NULL FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM ledger_fail('not_found', 'no such member');
    END IF;
    IF v_row.role = 'owner' THEN
        PERFORM ledger_fail('forbidden_role', 'the owner cannot be removed');
    END IF;
    IF v_row.user_id IS DISTINCT FROM p_by THEN
        IF v_me.id IS NULL THEN  -- (bound to someone else since the first read)
            v_me := business_manager(p_business, p_by, v_now);
        END IF;
        IF v_me.role <> 'owner' AND v_row.role = 'admin' THEN
            PERFORM ledger_fail('forbidden_role', 'only the owner removes admins');
        END IF;
    END IF;
    UPDATE business_members SET removed_at = v_now, removed_by = p_by, updated_at = v_now
    WHERE id = v_row.id
    RETURNING * INTO v_row;
    IF v_row.user_id IS NOT NULL THEN
        UPDATE voice_sessions
        SET status = 'ended', ended_at = v_now, ws_generation = ws_generation + 1
        WHERE user_id = v_row.user_id AND wallet_id = p_business AND status = 'active';
        PERFORM 1 FROM profiles WHERE id = p_business FOR UPDATE;
        FOR v_tx IN
            SELECT * FROM transactions
            WHERE user_id = p_business AND made_by = v_row.user_id AND status = 'pending'
            ORDER BY id FOR UPDATE
        LOOP
            PERFORM ledger_void(v_tx, 'member_removed');
        END LOOP;
    END IF;
    RETURN v_row;
END;
$$;

REVOKE ALL ON FUNCTION public.business_member_remove(uuid, uuid, uuid, timestamp with time zone) FROM PUBLIC, anon, authenticated;
