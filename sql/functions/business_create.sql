-- public.business_create: its current definition, applied again whenever this file changes (edit it
-- here). Its history, in numbered files: 0028_business.sql.

-- A business wallet for a user whose plan has `multi_user`: its profile (no phone, no PIN) with an opening
-- balance of 0, the business row and the owner's membership.
CREATE OR REPLACE FUNCTION public.business_create(p_owner UUID, p_name TEXT, p_colour TEXT,
    p_now TIMESTAMPTZ DEFAULT NULL) RETURNS public.businesses
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    v_now TIMESTAMPTZ := coalesce(p_now, now());
    v_owner profiles%ROWTYPE;
    v_id UUID := gen_random_uuid();
    v_row businesses%ROWTYPE;
BEGIN
    SELECT * INTO v_owner FROM profiles WHERE id = p_owner FOR UPDATE;
    IF NOT FOUND OR EXISTS (SELECT 1 FROM businesses WHERE id = p_owner) THEN
        PERFORM ledger_fail('user_not_found', 'no such user');
    END IF;
    IF NOT coalesce((SELECT p.features -> 'multi_user' = 'true'::jsonb
                     FROM plan_features(p_owner, v_now) f JOIN subscription_plans p ON p.id = f.plan), false) THEN
        PERFORM ledger_fail('plan_required', 'business accounts come with the Business plan');
    END IF;
    IF (SELECT count(*) FROM businesses WHERE owner_id = p_owner) >= 10 THEN
        PERFORM ledger_fail('too_many_businesses', 'at most 10 businesses per owner');
    END IF;
    INSERT INTO auth.users (id) VALUES (v_id);
    INSERT INTO profiles (id, phone_number, mpesa_number, wallet_balance)
    VALUES (v_id, 'business:' || v_id::text, v_owner.mpesa_number, 0);
    PERFORM update_user_balance(v_id, NULL, 0, 'opening_balance');
    INSERT INTO businesses (id, owner_id, display_name, colour, created_at)
    VALUES (v_id, p_owner, btrim(p_name), lower(coalesce(p_colour, '#1b5e20')), v_now)
    RETURNING * INTO v_row;
    INSERT INTO business_members (business_id, phone, user_id, role, invited_by, created_at, updated_at)
    VALUES (v_id, v_owner.phone_number, p_owner, 'owner', p_owner, v_now, v_now);
    RETURN v_row;
END;
$$;

REVOKE ALL ON FUNCTION public.business_create(uuid, text, text, timestamp with time zone) FROM PUBLIC, anon, authenticated;
