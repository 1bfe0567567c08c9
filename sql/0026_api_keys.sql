-- API access (issue 23): keys for plans with `features.api_access`, trusted payees confirmed with the PIN,
-- and idempotent payments by key. Every rule is decided here; the server only asks.
--
-- * `api_keys`: a key's sha256 (never the key), its display prefix, scopes (read, pay), its own daily limit
--   and per-minute rate limit, and when it was made, last used and revoked;
-- * `api_key_events`: every key event, which the owner reads under row level security;
-- * `trusted_payees`: the numbers a key may pay, each confirmed with the PIN (PSD2's trusted beneficiary);
-- * `idempotency_keys`: (user, Idempotency-Key) -> the request's hash and the answer given, for 24 hours;
--   the row's insertion is the lock that makes concurrent retries pay once.
-- Creating a `pay` key and confirming a payee take the evidence of a correct PIN checked in the same database
-- transaction by ledger_pin_attempt (sql/0019). A key's payment goes through ledger_propose and
-- ledger_confirm; the trusted payee row is the evidence that exempts it from the PIN, given here and only here.

CREATE TABLE public.api_keys (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id UUID NOT NULL REFERENCES public.profiles(id) ON DELETE CASCADE,
    name TEXT NOT NULL CHECK (char_length(name) BETWEEN 1 AND 100),
    scopes TEXT[] NOT NULL CHECK (cardinality(scopes) >= 1 AND scopes <@ ARRAY['read', 'pay']),
    key_hash TEXT NOT NULL UNIQUE CHECK (key_hash ~ '^[0-9a-f]{64}$'),
    prefix TEXT NOT NULL CHECK (char_length(prefix) <= 32),
    daily_limit NUMERIC(12,2) NOT NULL DEFAULT 10000 CHECK (daily_limit > 0),
    rate_limit_per_minute INT NOT NULL DEFAULT 60 CHECK (rate_limit_per_minute BETWEEN 1 AND 10000),
    window_start TIMESTAMPTZ,
    window_count INT NOT NULL DEFAULT 0,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_used_at TIMESTAMPTZ,
    revoked_at TIMESTAMPTZ
);
CREATE INDEX api_keys_user ON public.api_keys (user_id);

CREATE TABLE public.api_key_events (
    id BIGSERIAL PRIMARY KEY,
    user_id UUID NOT NULL REFERENCES public.profiles(id) ON DELETE CASCADE,
    key_id UUID REFERENCES public.api_keys(id) ON DELETE CASCADE,
    event TEXT NOT NULL,
    detail JSONB NOT NULL DEFAULT '{}'::jsonb,
    at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX api_key_events_user ON public.api_key_events (user_id, at DESC);

CREATE TABLE public.trusted_payees (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id UUID NOT NULL REFERENCES public.profiles(id) ON DELETE CASCADE,
    phone TEXT NOT NULL CHECK (phone ~ '^2547[0-9]{8}$|^2541[0-9]{8}$'),
    name TEXT NOT NULL CHECK (char_length(name) BETWEEN 1 AND 100),
    confirmed_at TIMESTAMPTZ NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (user_id, phone)
);

CREATE TABLE public.idempotency_keys (
    user_id UUID NOT NULL REFERENCES public.profiles(id) ON DELETE CASCADE,
    key TEXT NOT NULL CHECK (char_length(key) BETWEEN 1 AND 255),
    request_hash TEXT NOT NULL,
    api_key_id UUID REFERENCES public.api_keys(id) ON DELETE SET NULL,
    status INT,
    answer JSONB,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (user_id, key)
);
CREATE INDEX idempotency_keys_expiry ON public.idempotency_keys (expires_at);

-- Which key made a payment, and to which trusted payee (the evidence of its PIN exemption).
ALTER TABLE public.transactions
    ADD COLUMN api_key_id UUID REFERENCES public.api_keys(id) ON DELETE SET NULL,
    ADD COLUMN trusted_payee_id UUID REFERENCES public.trusted_payees(id) ON DELETE SET NULL;
CREATE INDEX transactions_api_key_day ON public.transactions (api_key_id, confirmed_at)
    WHERE api_key_id IS NOT NULL;

-- Owners read their keys (without the hash: column grant), events and payees; nobody writes them but the
-- server through the functions below.
ALTER TABLE public.api_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.api_key_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.trusted_payees ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.idempotency_keys ENABLE ROW LEVEL SECURITY;
CREATE POLICY "Users read own api keys" ON public.api_keys FOR SELECT USING (auth.uid() = user_id);
CREATE POLICY "Users read own api key events" ON public.api_key_events FOR SELECT USING (auth.uid() = user_id);
CREATE POLICY "Users read own trusted payees" ON public.trusted_payees FOR SELECT USING (auth.uid() = user_id);


-- ---------------------------------------------------------------------------------------------------------
-- The functions (the server's role only)
-- ---------------------------------------------------------------------------------------------------------

CREATE FUNCTION public.api_access_allowed(p_user_id UUID, p_now TIMESTAMPTZ) RETURNS BOOLEAN
LANGUAGE sql STABLE SET search_path = public, pg_temp AS $$
    SELECT coalesce(p.features -> 'api_access' = 'true'::jsonb, false)
    FROM subscription_plans p
    WHERE p.id = (SELECT f.plan FROM plan_features(p_user_id, p_now) f)
$$;

-- A new key. `pay` needs the evidence of a correct PIN checked in this database transaction.
CREATE FUNCTION public.api_key_create(
    p_user_id UUID, p_name TEXT, p_scopes TEXT[], p_hash TEXT, p_prefix TEXT, p_daily_limit NUMERIC,
    p_rate_limit INT, p_now TIMESTAMPTZ DEFAULT NULL
) RETURNS public.api_keys
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    v_now TIMESTAMPTZ := coalesce(p_now, now());
    v_row api_keys%ROWTYPE;
BEGIN
    PERFORM 1 FROM profiles WHERE id = p_user_id FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM ledger_fail('user_not_found', 'no such user');
    END IF;
    IF NOT api_access_allowed(p_user_id, v_now) THEN
        PERFORM ledger_fail('plan_required', 'API access comes with the Pro and Business plans');
    END IF;
    IF 'pay' = ANY (p_scopes) AND NOT ledger_take_pin_evidence(p_user_id) THEN
        PERFORM ledger_fail('pin_required', 'a key that pays needs the PIN');
    END IF;
    INSERT INTO api_keys (user_id, name, scopes, key_hash, prefix, daily_limit, rate_limit_per_minute,
                          created_at)
    VALUES (p_user_id, p_name, (SELECT array_agg(DISTINCT s ORDER BY s) FROM unnest(p_scopes) s), p_hash,
            p_prefix, p_daily_limit, p_rate_limit, v_now)
    RETURNING * INTO v_row;
    INSERT INTO api_key_events (user_id, key_id, event, detail, at)
    VALUES (p_user_id, v_row.id, 'created', jsonb_build_object('scopes', v_row.scopes, 'name', p_name), v_now);
    RETURN v_row;
END;
$$;

-- Revokes one of the user's keys at once (a second revocation changes nothing). False: no such key.
CREATE FUNCTION public.api_key_revoke(p_user_id UUID, p_key_id UUID, p_now TIMESTAMPTZ DEFAULT NULL)
RETURNS BOOLEAN
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    v_now TIMESTAMPTZ := coalesce(p_now, now());
BEGIN
    UPDATE api_keys SET revoked_at = coalesce(revoked_at, v_now)
    WHERE id = p_key_id AND user_id = p_user_id;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    INSERT INTO api_key_events (user_id, key_id, event, at) VALUES (p_user_id, p_key_id, 'revoked', v_now);
    RETURN true;
END;
$$;

-- The key of a hash, allowed `p_scope` now: not revoked, the owner's plan has API access, within its rate
-- limit. Counts the use and records it. Refusals: invalid_api_key, plan_required, insufficient_scope,
-- rate_limited.
CREATE FUNCTION public.api_key_use(p_hash TEXT, p_scope TEXT, p_now TIMESTAMPTZ DEFAULT NULL)
RETURNS public.api_keys
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    v_now TIMESTAMPTZ := coalesce(p_now, now());
    v_key api_keys%ROWTYPE;
BEGIN
    SELECT * INTO v_key FROM api_keys WHERE key_hash = p_hash FOR UPDATE;
    IF NOT FOUND OR v_key.revoked_at IS NOT NULL THEN
        PERFORM ledger_fail('invalid_api_key', 'the API key is not valid');
    END IF;
    IF NOT api_access_allowed(v_key.user_id, v_now) THEN
        PERFORM ledger_fail('plan_required', 'API access comes with the Pro and Business plans');
    END IF;
    IF NOT p_scope = ANY (v_key.scopes) THEN
        PERFORM ledger_fail('insufficient_scope', format('this key lacks the %s scope', p_scope));
    END IF;
    IF v_key.window_start IS NULL OR v_now >= v_key.window_start + interval '1 minute' THEN
        v_key.window_start := date_trunc('minute', v_now);
        v_key.window_count := 0;
    END IF;
    IF v_key.window_count >= v_key.rate_limit_per_minute THEN
        PERFORM ledger_fail('rate_limited', 'this key made too many requests this minute');
    END IF;
    UPDATE api_keys SET window_start = v_key.window_start, window_count = v_key.window_count + 1,
                        last_used_at = v_now
    WHERE id = v_key.id
    RETURNING * INTO v_key;
    RETURN v_key;
END;
$$;

-- Adds (or renames) a trusted payee, confirmed by the evidence of a correct PIN in this transaction.
CREATE FUNCTION public.trusted_payee_confirm(p_user_id UUID, p_phone TEXT, p_name TEXT,
                                             p_now TIMESTAMPTZ DEFAULT NULL)
RETURNS public.trusted_payees
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    v_now TIMESTAMPTZ := coalesce(p_now, now());
    v_row trusted_payees%ROWTYPE;
BEGIN
    PERFORM 1 FROM profiles WHERE id = p_user_id FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM ledger_fail('user_not_found', 'no such user');
    END IF;
    IF NOT ledger_take_pin_evidence(p_user_id) THEN
        PERFORM ledger_fail('pin_required', 'a trusted payee is confirmed with the PIN');
    END IF;
    INSERT INTO trusted_payees (user_id, phone, name, confirmed_at, created_at)
    VALUES (p_user_id, p_phone, p_name, v_now, v_now)
    ON CONFLICT (user_id, phone) DO UPDATE SET name = excluded.name, confirmed_at = excluded.confirmed_at
    RETURNING * INTO v_row;
    INSERT INTO api_key_events (user_id, event, detail, at)
    VALUES (p_user_id, 'payee_trusted', jsonb_build_object('phone', p_phone, 'name', p_name), v_now);
    RETURN v_row;
END;
$$;

CREATE FUNCTION public.trusted_payee_remove(p_user_id UUID, p_payee_id UUID, p_now TIMESTAMPTZ DEFAULT NULL)
RETURNS BOOLEAN
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    v_phone TEXT;
BEGIN
    DELETE FROM trusted_payees WHERE id = p_payee_id AND user_id = p_user_id RETURNING phone INTO v_phone;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    INSERT INTO api_key_events (user_id, event, detail, at)
    VALUES (p_user_id, 'payee_removed', jsonb_build_object('phone', v_phone), coalesce(p_now, now()));
    RETURN true;
END;
$$;

-- Stores an idempotent answer and returns it in the shape api_pay answers.
CREATE FUNCTION public.api_pay_answer(p_user_id UUID, p_key TEXT, p_status INT, p_body JSONB)
RETURNS JSONB
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
BEGIN
    UPDATE idempotency_keys SET status = p_status, answer = p_body WHERE user_id = p_user_id AND key = p_key;
    RETURN jsonb_build_object('status', p_status, 'body', p_body, 'replayed', false);
END;
$$;

-- One payment by a `pay` key (already checked by api_key_use in this transaction), idempotent per
-- (user, Idempotency-Key) for 24 hours: {status, body, replayed}. The idempotency row is inserted first; a
-- concurrent retry's insert waits on it and then finds the stored answer, so the same key pays once.
CREATE FUNCTION public.api_pay(
    p_key_id UUID, p_idempotency_key TEXT, p_request_hash TEXT, p_phone TEXT, p_amount NUMERIC,
    p_description TEXT, p_now TIMESTAMPTZ DEFAULT NULL
) RETURNS JSONB
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    v_now TIMESTAMPTZ := coalesce(p_now, now());
    v_key api_keys%ROWTYPE;
    v_seen idempotency_keys%ROWTYPE;
    v_payee trusted_payees%ROWTYPE;
    v_today NUMERIC;
    v_tx transactions%ROWTYPE;
    v_result JSONB;
BEGIN
    -- The key's row lock first: the payments of one key one at a time (its daily limit is counted under
    -- it), and before the idempotency row, whose foreign key share-locks the key row (else two payments of
    -- one key deadlock).
    SELECT * INTO v_key FROM api_keys WHERE id = p_key_id FOR UPDATE;
    IF NOT FOUND OR v_key.revoked_at IS NOT NULL OR NOT 'pay' = ANY (v_key.scopes) THEN
        PERFORM ledger_fail('invalid_api_key', 'the API key is not valid');
    END IF;
    DELETE FROM idempotency_keys
    WHERE user_id = v_key.user_id AND key = p_idempotency_key AND expires_at <= v_now;
    INSERT INTO idempotency_keys (user_id, key, request_hash, api_key_id, created_at, expires_at)
    VALUES (v_key.user_id, p_idempotency_key, p_request_hash, v_key.id, v_now, v_now + interval '24 hours')
    ON CONFLICT (user_id, key) DO NOTHING;
    IF NOT FOUND THEN
        SELECT * INTO v_seen FROM idempotency_keys WHERE user_id = v_key.user_id AND key = p_idempotency_key;
        IF v_seen.request_hash IS DISTINCT FROM p_request_hash THEN
            RETURN jsonb_build_object('status', 409, 'replayed', false, 'body', jsonb_build_object('error', jsonb_build_object(
                'code', 'idempotency_key_reused',
                'message', 'this Idempotency-Key was used with another request')));
        END IF;
        RETURN jsonb_build_object('status', v_seen.status, 'body', v_seen.answer, 'replayed', true);
    END IF;

    SELECT * INTO v_payee FROM trusted_payees WHERE user_id = v_key.user_id AND phone = p_phone;
    IF NOT FOUND THEN
        RETURN api_pay_answer(v_key.user_id, p_idempotency_key, 403, jsonb_build_object('error', jsonb_build_object(
            'code', 'payee_not_trusted',
            'message', 'an API key pays only trusted payees, confirmed with the PIN in the app')));
    END IF;
    -- The key's own daily limit, counted under its row lock.
    SELECT coalesce(sum(amount), 0) INTO v_today FROM transactions
    WHERE api_key_id = v_key.id AND status IN ('processing', 'completed')
      AND ledger_nairobi_day(confirmed_at) = ledger_nairobi_day(v_now);
    IF v_today + p_amount > v_key.daily_limit THEN
        RETURN api_pay_answer(v_key.user_id, p_idempotency_key, 403, jsonb_build_object('error', jsonb_build_object(
            'code', 'api_key_daily_limit',
            'message', format('this key may pay KES %s a day; KES %s paid today', v_key.daily_limit, v_today))));
    END IF;

    BEGIN
        v_tx := ledger_propose(v_key.user_id, 'send_phone', p_amount, p_phone, NULL, NULL, NULL, NULL, NULL,
                               NULL, NULL, left(p_description, 500), NULL, v_now, 120);
        UPDATE transactions SET api_key_id = v_key.id, trusted_payee_id = v_payee.id WHERE id = v_tx.id;
        -- PSD2's trusted-beneficiary exemption: the payee row, confirmed with the PIN, is the evidence.
        INSERT INTO ledger_pin_evidence (user_id, xact) VALUES (v_key.user_id, pg_current_xact_id())
        ON CONFLICT (user_id) DO UPDATE SET xact = excluded.xact;
        v_result := ledger_confirm(v_tx.id, v_key.user_id, v_tx.version, false, v_now);
    EXCEPTION WHEN SQLSTATE 'OPL01' THEN
        RETURN api_pay_answer(v_key.user_id, p_idempotency_key, 422, jsonb_build_object('error', jsonb_build_object(
            'code', SQLERRM, 'message', 'the ledger refused this payment')));
    END;
    IF v_result ? 'error' THEN
        RETURN api_pay_answer(v_key.user_id, p_idempotency_key, 422, jsonb_build_object('error', jsonb_build_object(
            'code', v_result ->> 'error', 'message', v_result ->> 'message'), 'transaction_id', v_tx.id));
    END IF;
    INSERT INTO api_key_events (user_id, key_id, event, detail, at)
    VALUES (v_key.user_id, v_key.id, 'payment',
            jsonb_build_object('transaction_id', v_tx.id, 'amount', p_amount::text, 'phone', p_phone), v_now);
    RETURN api_pay_answer(v_key.user_id, p_idempotency_key, 201, jsonb_build_object(
        'transaction_id', v_tx.id, 'status', v_result ->> 'status', 'amount', v_result ->> 'amount',
        'fee', v_result ->> 'fee', 'phone', p_phone, 'payee', v_payee.name,
        'wallet_balance', v_result ->> 'wallet_balance', 'confirmed_at', v_result -> 'confirmed_at'));
END;
$$;

-- Idempotency keys past their 24 hours (the sweeper may call this; api_pay also replaces an expired one).
CREATE FUNCTION public.idempotency_keys_prune(p_now TIMESTAMPTZ DEFAULT NULL) RETURNS INT
LANGUAGE sql SET search_path = public, pg_temp AS $$
    WITH gone AS (DELETE FROM idempotency_keys WHERE expires_at <= coalesce(p_now, now()) RETURNING 1)
    SELECT count(*)::int FROM gone
$$;


-- Supabase's default grants taken back: users read their own keys (not the hash), events and payees.
DO $$
DECLARE
    f TEXT;
    r TEXT;
BEGIN
    FOREACH f IN ARRAY ARRAY[
        'public.api_access_allowed(UUID, TIMESTAMPTZ)',
        'public.api_key_create(UUID, TEXT, TEXT[], TEXT, TEXT, NUMERIC, INT, TIMESTAMPTZ)',
        'public.api_key_revoke(UUID, UUID, TIMESTAMPTZ)',
        'public.api_key_use(TEXT, TEXT, TIMESTAMPTZ)',
        'public.trusted_payee_confirm(UUID, TEXT, TEXT, TIMESTAMPTZ)',
        'public.trusted_payee_remove(UUID, UUID, TIMESTAMPTZ)',
        'public.api_pay_answer(UUID, TEXT, INT, JSONB)',
        'public.api_pay(UUID, TEXT, TEXT, TEXT, NUMERIC, TEXT, TIMESTAMPTZ)',
        'public.idempotency_keys_prune(TIMESTAMPTZ)']
    LOOP
        EXECUTE format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC', f);
        FOREACH r IN ARRAY ARRAY['authenticated', 'anon'] LOOP
            IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
                EXECUTE format('REVOKE EXECUTE ON FUNCTION %s FROM %I', f, r);
            END IF;
        END LOOP;
    END LOOP;
    EXECUTE 'REVOKE ALL ON public.api_keys, public.api_key_events, public.trusted_payees, '
            'public.idempotency_keys FROM PUBLIC';
    EXECUTE 'REVOKE ALL ON SEQUENCE public.api_key_events_id_seq FROM PUBLIC';
    FOREACH r IN ARRAY ARRAY['authenticated', 'anon'] LOOP
        IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
            EXECUTE format('REVOKE ALL ON public.api_keys, public.api_key_events, public.trusted_payees, '
                           'public.idempotency_keys FROM %I', r);
            EXECUTE format('REVOKE ALL ON SEQUENCE public.api_key_events_id_seq FROM %I', r);
        END IF;
    END LOOP;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'authenticated') THEN
        EXECUTE 'GRANT SELECT (id, user_id, name, scopes, prefix, daily_limit, rate_limit_per_minute, '
                'created_at, last_used_at, revoked_at) ON public.api_keys TO authenticated';
        EXECUTE 'GRANT SELECT ON public.api_key_events, public.trusted_payees TO authenticated';
    END IF;
END
$$;
