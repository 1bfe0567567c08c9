-- Sign-up (issue 25): a person who signs up (Supabase Auth's phone OTP, or `ongea-pesa user add` on plain
-- PostgreSQL) gets a profile, a free subscription and a wallet of 0 from a trigger on auth.users, so a token
-- of a new user never meets a missing profile. And the table where `agent-config --apply` keeps the
-- ElevenLabs agent it created.
--
-- Supabase's `handle_new_user` pattern: the trigger function is SECURITY DEFINER (auth.users is written by
-- Supabase Auth's own role, which may not touch public tables), owned by the migrating role (which
-- `authenticated` is no member of), with a fixed search_path (an object planted in another schema cannot
-- stand in for ours), and nobody may EXECUTE it directly.

-- Kenyan mobile numbers in the one form the ledger stores, 2547XXXXXXXX / 2541XXXXXXXX (Supabase Auth keeps
-- E.164 without the "+"; a person may also type 07..., +254 7..., 254 07...); NULL for anything else.
CREATE FUNCTION public.ledger_normal_ke_phone(p_phone TEXT) RETURNS TEXT
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE
        WHEN d ~ '^254[17][0-9]{8}$' THEN d
        WHEN d ~ '^2540[17][0-9]{8}$' THEN '254' || substr(d, 5)
        WHEN d ~ '^0[17][0-9]{8}$' THEN '254' || substr(d, 2)
        WHEN d ~ '^[17][0-9]{8}$' THEN '254' || d
    END
    FROM (SELECT regexp_replace(coalesce(p_phone, ''), '^\s*\+|[\s().-]', '', 'g') AS d) AS n
    WHERE length(coalesce(p_phone, '')) <= 32
$$;

-- The profile, subscription and opening balance of one auth user: what sign-up creates, in the ledger's
-- rules (the opening balance is the user's first balance_history row, from 0, through update_user_balance).
-- `ongea-pesa user add` (a development and operator tool, on a connection that inserts into auth.users
-- itself) may pass an opening balance, plan, PIN hash and M-Pesa number in the transaction-local setting
-- `ongea.new_user` (JSON); Supabase Auth never sets it, and nobody who cannot insert into auth.users can
-- reach this function, so a person signing up can give themselves nothing (their own metadata is ignored).
CREATE FUNCTION public.ledger_create_profile(p_user_id UUID, p_phone TEXT) RETURNS BOOLEAN
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_phone TEXT := public.ledger_normal_ke_phone(p_phone);
    v_new JSONB := nullif(current_setting('ongea.new_user', true), '')::jsonb;
    v_plan TEXT := coalesce(v_new ->> 'plan', 'free');
    v_opening NUMERIC(12,2) := coalesce((v_new ->> 'opening_balance')::numeric, 0);
    v_mpesa TEXT;
BEGIN
    -- Used once: a later insert in the same transaction (by anyone) gets the defaults again.
    PERFORM set_config('ongea.new_user', '', true);
    IF v_phone IS NULL THEN
        -- An e-mail sign-up or a foreign number: no wallet (M-Pesa is Kenyan); the app's routes answer
        -- such a token with a clear refusal.
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

CREATE FUNCTION public.handle_new_user() RETURNS TRIGGER
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM public.ledger_create_profile(NEW.id, NEW.phone);
    RETURN NEW;
END;
$$;

REVOKE ALL ON FUNCTION public.ledger_normal_ke_phone(TEXT) FROM PUBLIC;
REVOKE ALL ON FUNCTION public.ledger_create_profile(UUID, TEXT) FROM PUBLIC;
REVOKE ALL ON FUNCTION public.handle_new_user() FROM PUBLIC;
DO $$
DECLARE
    r TEXT;
BEGIN
    FOREACH r IN ARRAY ARRAY['anon', 'authenticated'] LOOP
        IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
            EXECUTE format('REVOKE ALL ON FUNCTION public.ledger_normal_ke_phone(TEXT) FROM %I', r);
            EXECUTE format('REVOKE ALL ON FUNCTION public.ledger_create_profile(UUID, TEXT) FROM %I', r);
            EXECUTE format('REVOKE ALL ON FUNCTION public.handle_new_user() FROM %I', r);
        END IF;
    END LOOP;
END
$$;

-- Its own name: a project that followed Supabase's guide may already have an `on_auth_user_created`.
CREATE TRIGGER ongea_pesa_on_auth_user_created
    AFTER INSERT ON auth.users
    FOR EACH ROW EXECUTE FUNCTION public.handle_new_user();

-- Those who signed up before this trigger existed (their tokens met a missing profile): the same wallet.
DO $$
DECLARE
    u RECORD;
BEGIN
    FOR u IN SELECT a.id, a.phone FROM auth.users a
             WHERE NOT EXISTS (SELECT 1 FROM public.profiles p WHERE p.id = a.id)
               AND public.ledger_normal_ke_phone(a.phone) IS NOT NULL
               AND NOT EXISTS (SELECT 1 FROM public.profiles p
                               WHERE p.phone_number = public.ledger_normal_ke_phone(a.phone))
             ORDER BY a.created_at LOOP
        PERFORM public.ledger_create_profile(u.id, u.phone);
    END LOOP;
END
$$;


-- The ElevenLabs agent `ongea-pesa agent-config --apply` created, per ElevenLabs API (base URL), with the
-- digest of the definition it last sent (a run with the same definition sends no update) and the post-call
-- webhook it set. Server-only.
CREATE TABLE public.elevenlabs_agents (
    api_base TEXT PRIMARY KEY,
    agent_id TEXT NOT NULL,
    webhook_id TEXT,
    definition_sha256 TEXT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
ALTER TABLE public.elevenlabs_agents ENABLE ROW LEVEL SECURITY;
REVOKE ALL ON public.elevenlabs_agents FROM PUBLIC;
DO $$
DECLARE
    r TEXT;
BEGIN
    FOREACH r IN ARRAY ARRAY['anon', 'authenticated'] LOOP
        IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
            EXECUTE format('REVOKE ALL ON public.elevenlabs_agents FROM %I', r);
        END IF;
    END LOOP;
END
$$;
