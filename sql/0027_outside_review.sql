-- Outside review of this afternoon's money and auth changes (the holes it found, each with its test in
-- tests/attack/test_outside_review_*.py).

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


-- 2. The issue's "grants that a later mistake cannot reopen" reached the PIN columns (0019's guard) but not
-- the money: after a blanket `GRANT ALL ON ALL TABLES IN SCHEMA public TO authenticated`, a signed-in user's
-- `UPDATE profiles SET wallet_balance = 1000000 WHERE id = auth.uid()` passed row level security (the
-- profile is their own) and made a million shillings. The same guard now keeps the wallet and the holds too:
-- they change only through the ledger's functions, which run as the ledger's role.
CREATE OR REPLACE FUNCTION public.ledger_gate_guard_profiles() RETURNS TRIGGER
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
BEGIN
    IF current_user IN ('authenticated', 'anon') THEN
        IF NEW.pin_hash IS DISTINCT FROM OLD.pin_hash
           OR NEW.pin_failed_attempts IS DISTINCT FROM OLD.pin_failed_attempts
           OR NEW.pin_locked_until IS DISTINCT FROM OLD.pin_locked_until
           OR NEW.no_pin_count IS DISTINCT FROM OLD.no_pin_count
           OR NEW.no_pin_amount IS DISTINCT FROM OLD.no_pin_amount THEN
            RAISE EXCEPTION USING ERRCODE = 'insufficient_privilege',
                MESSAGE = 'the PIN, its lock and the allowance change only through the ledger';
        END IF;
        IF NEW.wallet_balance IS DISTINCT FROM OLD.wallet_balance
           OR NEW.held_balance IS DISTINCT FROM OLD.held_balance THEN
            RAISE EXCEPTION USING ERRCODE = 'insufficient_privilege',
                MESSAGE = 'the wallet and its holds change only through the ledger';
        END IF;
    END IF;
    RETURN NEW;
END;
$$;
