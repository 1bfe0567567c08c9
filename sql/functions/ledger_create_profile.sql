-- public.ledger_create_profile: its current definition, applied again whenever this file changes (edit it
-- here). Its history, in numbered files: 0022_signup.sql, 0027_outside_review.sql.

-- 1. Sign-up's ledger_create_profile (0022) is SECURITY DEFINER and takes an opening balance, plan and PIN
-- hash from `ongea.new_user`, a setting any role may set. Its EXECUTE was revoked from the user roles, but a
-- blanket `GRANT ALL ON ALL FUNCTIONS IN SCHEMA public TO authenticated` after migrating (a common Supabase
-- habit) gave it back, and a person who signed up by e-mail (no profile yet) made their own wallet of any
-- balance. Now it runs only as the sign-up trigger's step, for the auth user's own phone, whatever the grants.
CREATE OR REPLACE FUNCTION public.ledger_create_profile(p_user_id UUID, p_phone TEXT) RETURNS BOOLEAN
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_phone TEXT := public.ledger_normal_ke_phone(p_phone);
    v_new JSONB;
    v_plan TEXT;
    v_opening NUMERIC(12,2);
    v_mpesa TEXT;
BEGIN
    IF pg_trigger_depth() < 1
       OR NOT EXISTS (SELECT 1 FROM auth.users a WHERE a.id = p_user_id AND a.phone IS NOT DISTINCT FROM p_phone)
    THEN
        RAISE EXCEPTION USING ERRCODE = 'insufficient_privilege',
            MESSAGE = 'a profile is made only by signing up (the trigger on auth.users)';
    END IF;
    v_new := nullif(current_setting('ongea.new_user', true), '')::jsonb;
    v_plan := coalesce(v_new ->> 'plan', 'free');
    v_opening := coalesce((v_new ->> 'opening_balance')::numeric, 0);
    -- Used once: a later insert in the same transaction (by anyone) gets the defaults again.
    PERFORM set_config('ongea.new_user', '', true);
    IF v_phone IS NULL THEN
        RETURN false;
    END IF;
    v_mpesa := coalesce(public.ledger_normal_ke_phone(v_new ->> 'mpesa_number'), v_phone);
    IF v_opening < 0 THEN
        RAISE EXCEPTION 'the opening balance cannot be negative' USING ERRCODE = 'check_violation';
    END IF;
    INSERT INTO public.profiles (id, phone_number, mpesa_number, wallet_balance, pin_hash)
    VALUES (p_user_id, v_phone, v_mpesa, 0, v_new ->> 'pin_hash');
    INSERT INTO public.subscriptions (user_id, plan_type, status, monthly_fee, transaction_fee_percentage,
                                      monthly_transaction_limit, current_period_start, current_period_end)
    SELECT p_user_id, p.id, 'active', p.monthly_fee, p.transaction_fee_percentage,
           p.monthly_transaction_limit, now(), now() + interval '1 month'
    FROM public.subscription_plans p WHERE p.id = v_plan;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown plan %', v_plan USING ERRCODE = 'check_violation';
    END IF;
    PERFORM public.update_user_balance(p_user_id, NULL, v_opening, 'opening_balance');
    RETURN true;
END;
$$;

REVOKE ALL ON FUNCTION public.ledger_create_profile(uuid, text) FROM PUBLIC, anon, authenticated;
