-- Money comes in only when money arrived (issue 7).
--
-- 1. bank_to_mpesa becomes a C2B deposit: confirming it records an expected deposit with a short account
--    reference for the business paybill; Daraja's C2B confirmation for that reference (once per TransID)
--    completes it and credits the amount that arrived minus the fee. No outbox row, no simulated bank.
-- 2. One credit per top-up: a second STK push for the same top-up never credits by its callback's word; it
--    is kept as an alternate and credited only after an STK query says it was paid, and only if the top-up
--    was not credited already. A push whose answer was lost stays pending with a unique account reference,
--    so Pull Transactions can find it.
-- 3. Privileges that hold on Supabase: nothing in `public` is granted to anon, authenticated or PUBLIC
--    except what is granted explicitly below, now and for every object later migrations create.
-- 4. ledger_cancel_session is scoped to a user; the sweeper has its own server-side variant.

-- ---------------------------------------------------------------------------------------------------------
-- Roles: Supabase has `anon`; plain PostgreSQL gets a NOLOGIN stand-in so grants can name it.
-- ---------------------------------------------------------------------------------------------------------
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'anon') THEN
        BEGIN
            CREATE ROLE anon NOLOGIN NOINHERIT;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;  -- another database of this cluster created it first
        END;
    END IF;
END
$$;

-- ---------------------------------------------------------------------------------------------------------
-- C2B deposits
-- ---------------------------------------------------------------------------------------------------------

ALTER TABLE public.mpesa_callbacks DROP CONSTRAINT IF EXISTS mpesa_callbacks_kind_check;
ALTER TABLE public.mpesa_callbacks ADD CONSTRAINT mpesa_callbacks_kind_check CHECK (
    kind IN ('payout_result', 'payout_timeout', 'status_result', 'status_timeout', 'stk',
             'c2b_validation', 'c2b_confirmation'));

-- The business paybill people pay into from their bank app (the server writes its configured value at
-- start-up; the default is Safaricom's sandbox C2B shortcode).
CREATE TABLE public.c2b_paybill (
    id BOOLEAN PRIMARY KEY DEFAULT true CHECK (id),
    shortcode TEXT NOT NULL CHECK (shortcode ~ '^[0-9]{5,7}$'),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
INSERT INTO public.c2b_paybill (shortcode) VALUES ('600000');
ALTER TABLE public.c2b_paybill ENABLE ROW LEVEL SECURITY;

-- One per confirmed bank_to_mpesa: what the person was told to pay into, until when.
CREATE TABLE public.c2b_expected_deposits (
    transaction_id UUID PRIMARY KEY REFERENCES public.transactions(id),
    user_id UUID NOT NULL REFERENCES auth.users(id) ON DELETE CASCADE,
    account_reference TEXT NOT NULL UNIQUE CHECK (account_reference ~ '^[A-Z0-9]{6,12}$'),
    paybill TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'awaiting' CHECK (status IN ('awaiting', 'received', 'expired')),
    expires_at TIMESTAMPTZ NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX idx_c2b_expected_awaiting ON public.c2b_expected_deposits (expires_at) WHERE status = 'awaiting';
ALTER TABLE public.c2b_expected_deposits ENABLE ROW LEVEL SECURITY;

-- Every deposit M-Pesa reported into the paybill, once per TransID, and what it did. `outcome`:
-- credited (completed its bank_to_mpesa), or one that needs a person: unmatched (unknown reference),
-- reference_used (its deposit already arrived), reference_expired, wrong_shortcode, too_large.
CREATE TABLE public.c2b_deposits (
    id BIGSERIAL PRIMARY KEY,
    trans_id TEXT NOT NULL UNIQUE,
    bill_ref_number TEXT NOT NULL,
    account_reference TEXT NOT NULL,
    amount NUMERIC(12,2) NOT NULL CHECK (amount > 0),
    business_short_code TEXT NOT NULL DEFAULT '',
    trans_time TEXT NOT NULL DEFAULT '',
    msisdn TEXT NOT NULL DEFAULT '',
    first_name TEXT NOT NULL DEFAULT '',
    transaction_type TEXT NOT NULL DEFAULT '',
    source TEXT NOT NULL DEFAULT 'confirmation' CHECK (source IN ('confirmation', 'pull')),
    transaction_id UUID REFERENCES public.transactions(id),
    user_id UUID,
    outcome TEXT NOT NULL,
    received_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    resolved_at TIMESTAMPTZ,
    resolution TEXT
);
CREATE INDEX idx_c2b_deposits_reference ON public.c2b_deposits (account_reference);
CREATE UNIQUE INDEX idx_c2b_deposits_one_credit ON public.c2b_deposits (transaction_id)
    WHERE transaction_id IS NOT NULL;
CREATE INDEX idx_c2b_deposits_for_a_person ON public.c2b_deposits (received_at)
    WHERE outcome <> 'credited' AND resolved_at IS NULL;
ALTER TABLE public.c2b_deposits ENABLE ROW LEVEL SECURITY;

-- A short reference a person can type in a bank app: letters and digits without 0/O/1/I/L.
CREATE FUNCTION public.ledger_new_reference(p_prefix TEXT, p_length INT) RETURNS TEXT
LANGUAGE plpgsql VOLATILE SET search_path = public, pg_temp AS $$
DECLARE
    v_alphabet CONSTANT TEXT := '23456789ABCDEFGHJKMNPQRSTUVWXYZ';
    v_out TEXT := p_prefix;
BEGIN
    FOR i IN 1..p_length LOOP
        v_out := v_out || substr(v_alphabet, 1 + floor(random() * length(v_alphabet))::int, 1);
    END LOOP;
    RETURN v_out;
END;
$$;

-- The reference as M-Pesa may hand it back: typed by a person, any case, spaces and dashes.
CREATE FUNCTION public.ledger_normal_reference(p_ref TEXT) RETURNS TEXT
LANGUAGE sql IMMUTABLE SET search_path = public, pg_temp AS $$
    SELECT upper(regexp_replace(coalesce(p_ref, ''), '[^A-Za-z0-9]', '', 'g'))
$$;

-- ledger_confirm of 0003, changed for bank_to_mpesa only: no outbox row; an expected deposit instead, and
-- the result carries the paybill and account reference the person pays with.
CREATE OR REPLACE FUNCTION public.ledger_confirm(
    p_transaction_id UUID, p_user_id UUID, p_version INT, p_voice_verified BOOLEAN,
    p_now TIMESTAMPTZ DEFAULT NULL
) RETURNS JSONB
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    v_now TIMESTAMPTZ := coalesce(p_now, now());
    v_profile profiles%ROWTYPE;
    v_tx transactions%ROWTYPE;
    v_terms RECORD;
    v_refusal TEXT;
    v_wallet NUMERIC(12,2);
    v_topup_id UUID;
    v_result JSONB;
    v_reference TEXT;
    v_paybill TEXT;
BEGIN
    SELECT * INTO v_profile FROM profiles WHERE id = p_user_id FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM ledger_fail('not_found', 'no such proposal');
    END IF;
    SELECT * INTO v_tx FROM transactions WHERE id = p_transaction_id AND user_id = p_user_id FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM ledger_fail('not_found', 'no such proposal');
    END IF;

    IF v_tx.status IN ('processing', 'completed', 'failed') THEN
        IF p_version IS DISTINCT FROM v_tx.version THEN
            PERFORM ledger_fail('stale_version', 'that version of the proposal was replaced by a correction');
        END IF;
        RETURN v_tx.confirm_result || jsonb_build_object('outcome', 'already_confirmed', 'status', v_tx.status);
    END IF;
    IF v_tx.status = 'cancelled' THEN
        PERFORM ledger_fail(CASE WHEN v_tx.error_message = 'expired' THEN 'expired' ELSE 'cancelled' END,
                            'the proposal was cancelled');
    END IF;
    IF p_version IS DISTINCT FROM v_tx.version THEN
        PERFORM ledger_fail('stale_version', 'that version of the proposal was replaced by a correction');
    END IF;
    IF v_now >= v_tx.expires_at THEN
        PERFORM ledger_void(v_tx, 'expired');
        RETURN jsonb_build_object('error', 'expired', 'message', 'the proposal expired');
    END IF;
    SELECT * INTO v_terms FROM ledger_user_terms(p_user_id, v_now);
    v_refusal := ledger_limit_refusal(p_user_id, v_tx.amount, v_terms.monthly_limit, v_now);
    IF v_refusal IS NOT NULL THEN
        PERFORM ledger_void(v_tx, v_refusal);
        RETURN jsonb_build_object('error', v_refusal, 'message', ledger_limit_message(v_refusal));
    END IF;

    v_wallet := v_profile.wallet_balance;
    IF v_tx.type <> 'bank_to_mpesa' THEN
        PERFORM update_user_balance(p_user_id, v_tx.id, -v_tx.amount, 'debit', NULL, v_tx.hold_amount);
        v_wallet := update_user_balance(p_user_id, v_tx.id, -v_tx.fee, 'fee');
        IF v_profile.mpesa_auto_topup AND v_wallet < v_profile.mpesa_auto_topup_threshold
           AND coalesce(v_profile.mpesa_auto_topup_amount, 0) > 0 THEN
            INSERT INTO mpesa_transactions (user_id, kind, status, amount, phone_number)
            VALUES (p_user_id, 'auto_topup', 'pending', v_profile.mpesa_auto_topup_amount,
                    coalesce(nullif(v_profile.mpesa_number, ''), v_profile.phone_number))
            ON CONFLICT (user_id) WHERE kind = 'auto_topup' AND status = 'pending' DO NOTHING
            RETURNING id INTO v_topup_id;
        END IF;
    ELSE
        SELECT shortcode INTO v_paybill FROM c2b_paybill;
        LOOP
            v_reference := ledger_new_reference('OP', 6);
            BEGIN
                INSERT INTO c2b_expected_deposits (transaction_id, user_id, account_reference, paybill,
                                                   expires_at)
                VALUES (v_tx.id, p_user_id, v_reference, v_paybill, v_now + interval '24 hours');
                EXIT;
            EXCEPTION WHEN unique_violation THEN
                NULL;  -- that reference is taken: draw another
            END;
        END LOOP;
    END IF;

    v_result := jsonb_build_object(
        'outcome', 'confirmed', 'transaction_id', v_tx.id, 'version', v_tx.version, 'status', 'processing',
        'type', v_tx.type, 'amount', v_tx.amount::text, 'fee', v_tx.fee::text,
        'voice_verified', coalesce(p_voice_verified, false), 'wallet_balance', v_wallet::text,
        'available', (v_wallet - (v_profile.held_balance - v_tx.hold_amount))::text,
        'confirmed_at', v_now, 'auto_topup_id', v_topup_id);
    IF v_reference IS NOT NULL THEN
        v_result := v_result || jsonb_build_object('paybill', v_paybill, 'account_reference', v_reference,
                                                   'deposit_expires_at', v_now + interval '24 hours');
    END IF;
    UPDATE transactions
    SET status = 'processing', confirmed_at = v_now, voice_verified = coalesce(p_voice_verified, false),
        confirm_result = v_result, external_ref = coalesce(v_reference, external_ref)
    WHERE id = v_tx.id;
    INSERT INTO ledger_usage AS u (user_id, day, confirmed_count, confirmed_amount)
    VALUES (p_user_id, ledger_nairobi_day(v_now), 1, v_tx.amount)
    ON CONFLICT (user_id, day) DO UPDATE
    SET confirmed_count = u.confirmed_count + 1, confirmed_amount = u.confirmed_amount + excluded.confirmed_amount;
    IF v_tx.type <> 'bank_to_mpesa' THEN
        INSERT INTO payout_outbox (transaction_id, user_id, kind) VALUES (v_tx.id, p_user_id, 'mpesa_payout');
    END IF;
    RETURN v_result;
END;
$$;

-- A C2B confirmation (or a Pull Transactions line): recorded once per TransID; when its reference names an
-- awaited deposit, that bank_to_mpesa completes with the amount that arrived (fee at the user's rate now)
-- and the wallet is credited amount then -fee. Returns the deposit's outcome, or 'already_recorded'.
CREATE FUNCTION public.ledger_credit_c2b(p_trans_id TEXT, p_bill_ref TEXT, p_amount NUMERIC,
    p_short_code TEXT, p_trans_time TEXT, p_msisdn TEXT, p_first_name TEXT, p_type TEXT,
    p_source TEXT DEFAULT 'confirmation') RETURNS TEXT
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    v_ref TEXT := ledger_normal_reference(p_bill_ref);
    v_deposit BIGINT;
    v_expected c2b_expected_deposits%ROWTYPE;
    v_tx transactions%ROWTYPE;
    v_paybill TEXT;
    v_terms RECORD;
    v_fee NUMERIC(12,2);
    v_outcome TEXT;
BEGIN
    IF coalesce(p_trans_id, '') = '' OR p_amount IS NULL OR p_amount <= 0 OR p_amount <> round(p_amount, 2) THEN
        PERFORM ledger_fail('invalid_input', 'a deposit needs a TransID and a positive amount');
    END IF;
    INSERT INTO c2b_deposits (trans_id, bill_ref_number, account_reference, amount, business_short_code,
                              trans_time, msisdn, first_name, transaction_type, source, outcome)
    VALUES (p_trans_id, left(coalesce(p_bill_ref, ''), 100), v_ref, p_amount, coalesce(p_short_code, ''),
            coalesce(p_trans_time, ''), left(coalesce(p_msisdn, ''), 100), left(coalesce(p_first_name, ''), 100),
            left(coalesce(p_type, ''), 100), p_source, 'recording')
    ON CONFLICT (trans_id) DO NOTHING
    RETURNING id INTO v_deposit;
    IF v_deposit IS NULL THEN
        RETURN 'already_recorded';
    END IF;

    SELECT shortcode INTO v_paybill FROM c2b_paybill;
    SELECT * INTO v_expected FROM c2b_expected_deposits WHERE account_reference = v_ref;
    IF coalesce(p_short_code, '') <> '' AND p_short_code <> v_paybill THEN
        v_outcome := 'wrong_shortcode';
    ELSIF NOT FOUND THEN
        v_outcome := 'unmatched';
    ELSIF p_amount > 999999 THEN
        v_outcome := 'too_large';
    END IF;
    IF v_outcome IS NOT NULL THEN
        UPDATE c2b_deposits SET outcome = v_outcome, user_id = v_expected.user_id WHERE id = v_deposit;
        RETURN v_outcome;
    END IF;

    -- Lock order of the ledger: the profile, then the rows.
    PERFORM 1 FROM profiles WHERE id = v_expected.user_id FOR UPDATE;
    SELECT * INTO v_expected FROM c2b_expected_deposits WHERE transaction_id = v_expected.transaction_id
    FOR UPDATE;
    SELECT * INTO v_tx FROM transactions WHERE id = v_expected.transaction_id FOR UPDATE;
    IF v_expected.status <> 'awaiting' OR v_tx.status <> 'processing' THEN
        v_outcome := CASE WHEN v_expected.status = 'expired' THEN 'reference_expired' ELSE 'reference_used' END;
        UPDATE c2b_deposits SET outcome = v_outcome, user_id = v_expected.user_id WHERE id = v_deposit;
        RETURN v_outcome;
    END IF;

    SELECT * INTO v_terms FROM ledger_user_terms(v_tx.user_id, now());
    v_fee := round(p_amount * v_terms.fee_rate, 2);
    UPDATE ledger_usage SET confirmed_amount = confirmed_amount + p_amount - v_tx.amount
    WHERE user_id = v_tx.user_id AND day = ledger_nairobi_day(v_tx.confirmed_at);
    UPDATE transactions
    SET amount = p_amount, fee = v_fee, status = 'completed', mpesa_transaction_id = p_trans_id,
        completed_at = now()
    WHERE id = v_tx.id;
    PERFORM update_user_balance(v_tx.user_id, v_tx.id, p_amount, 'bank_credit');
    PERFORM update_user_balance(v_tx.user_id, v_tx.id, -v_fee, 'bank_credit_fee');
    UPDATE c2b_expected_deposits SET status = 'received' WHERE transaction_id = v_tx.id;
    UPDATE c2b_deposits SET outcome = 'credited', user_id = v_tx.user_id, transaction_id = v_tx.id
    WHERE id = v_deposit;
    RETURN 'credited';
END;
$$;

-- Whether a deposit with this reference would be credited now (the C2B validation answer).
CREATE FUNCTION public.ledger_c2b_acceptable(p_bill_ref TEXT) RETURNS BOOLEAN
LANGUAGE sql STABLE SET search_path = public, pg_temp AS $$
    SELECT EXISTS (SELECT 1 FROM c2b_expected_deposits
                   WHERE account_reference = ledger_normal_reference(p_bill_ref) AND status = 'awaiting')
$$;

-- Expected deposits whose 24 hours ran out: the bank_to_mpesa fails (nothing to refund: nothing left the
-- wallet). Returns how many.
CREATE FUNCTION public.ledger_expire_deposits(p_now TIMESTAMPTZ DEFAULT NULL) RETURNS INT
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    v_now TIMESTAMPTZ := coalesce(p_now, now());
    v_due RECORD;
    v_tx transactions%ROWTYPE;
    v_count INT := 0;
BEGIN
    FOR v_due IN
        SELECT transaction_id, user_id FROM c2b_expected_deposits
        WHERE status = 'awaiting' AND expires_at <= v_now ORDER BY user_id, transaction_id
    LOOP
        PERFORM 1 FROM profiles WHERE id = v_due.user_id FOR UPDATE;
        PERFORM 1 FROM c2b_expected_deposits WHERE transaction_id = v_due.transaction_id
                                                 AND status = 'awaiting' FOR UPDATE;
        IF FOUND THEN
            SELECT * INTO v_tx FROM transactions WHERE id = v_due.transaction_id FOR UPDATE;
            IF v_tx.status = 'processing' THEN
                UPDATE transactions
                SET status = 'failed', error_message = 'no deposit arrived within 24 hours', completed_at = v_now
                WHERE id = v_tx.id;
                UPDATE ledger_usage SET confirmed_amount = confirmed_amount - v_tx.amount
                WHERE user_id = v_tx.user_id AND day = ledger_nairobi_day(v_tx.confirmed_at);
            END IF;
            UPDATE c2b_expected_deposits SET status = 'expired' WHERE transaction_id = v_due.transaction_id;
            v_count := v_count + 1;
        END IF;
    END LOOP;
    RETURN v_count;
END;
$$;

-- bank_to_mpesa transactions the simulated bank never settled: they fail (nothing left the wallet), so
-- nothing waits on a bank that does not exist.
DO $$
DECLARE
    v_id UUID;
BEGIN
    FOR v_id IN
        SELECT t.id FROM transactions t JOIN payout_outbox o ON o.transaction_id = t.id
        WHERE t.type = 'bank_to_mpesa' AND t.status = 'processing' AND o.kind = 'bank_credit'
    LOOP
        PERFORM ledger_settle(v_id, false, NULL, 'bank pulls are discontinued: pay into the paybill instead');
    END LOOP;
END
$$;

-- ledger_settle of 0003 settles payouts only: a bank_to_mpesa is completed by its deposit
-- (ledger_credit_c2b) or failed by its expiry (ledger_expire_deposits), never by anyone's word.
CREATE OR REPLACE FUNCTION public.ledger_settle(p_transaction_id UUID, p_success BOOLEAN, p_receipt TEXT,
    p_error TEXT) RETURNS TEXT
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    v_user UUID;
    v_tx transactions%ROWTYPE;
BEGIN
    SELECT user_id INTO v_user FROM transactions WHERE id = p_transaction_id;
    IF NOT FOUND THEN
        RETURN 'not_found';
    END IF;
    PERFORM 1 FROM profiles WHERE id = v_user FOR UPDATE;
    SELECT * INTO v_tx FROM transactions WHERE id = p_transaction_id FOR UPDATE;
    IF v_tx.type = 'bank_to_mpesa' THEN
        RETURN 'not_a_payout';
    ELSIF v_tx.status IN ('completed', 'failed') THEN
        RETURN 'already_settled';
    ELSIF v_tx.status <> 'processing' THEN
        RETURN 'not_processing';
    END IF;

    IF p_success THEN
        UPDATE transactions
        SET status = 'completed', mpesa_transaction_id = coalesce(p_receipt, ''), completed_at = now()
        WHERE id = v_tx.id;
    ELSE
        PERFORM update_user_balance(v_user, v_tx.id, v_tx.amount, 'refund');
        PERFORM update_user_balance(v_user, v_tx.id, v_tx.fee, 'fee_refund');
        UPDATE transactions
        SET status = 'failed', error_message = coalesce(nullif(p_error, ''), 'payment failed'),
            completed_at = now()
        WHERE id = v_tx.id;
        UPDATE ledger_usage SET confirmed_amount = confirmed_amount - v_tx.amount
        WHERE user_id = v_user AND day = ledger_nairobi_day(v_tx.confirmed_at);
    END IF;
    UPDATE payout_outbox SET status = 'settled', settled_at = now() WHERE transaction_id = v_tx.id;
    RETURN CASE WHEN p_success THEN 'completed' ELSE 'failed' END;
END;
$$;

-- ---------------------------------------------------------------------------------------------------------
-- STK: one credit per top-up
-- ---------------------------------------------------------------------------------------------------------

-- A unique reference per top-up (the STK AccountReference, at most 12 characters), so a push whose answer
-- was lost can be found by Pull Transactions.
ALTER TABLE public.mpesa_transactions ADD COLUMN account_reference TEXT;
CREATE UNIQUE INDEX idx_mpesa_transactions_reference ON public.mpesa_transactions (account_reference)
    WHERE account_reference IS NOT NULL;
ALTER TABLE public.mpesa_transactions ADD COLUMN push_unknown_since TIMESTAMPTZ;

-- Other pushes a callback tied to a top-up (its URL names the top-up, its CheckoutRequestID is not the
-- top-up's): never credited by a callback's word; an STK query decides.
CREATE TABLE public.mpesa_stk_alternates (
    checkout_request_id TEXT PRIMARY KEY,
    topup_id UUID NOT NULL REFERENCES public.mpesa_transactions(id) ON DELETE CASCADE,
    status TEXT NOT NULL DEFAULT 'to_query'
        CHECK (status IN ('to_query', 'paid', 'unpaid', 'unknown_checkout', 'paid_twice')),
    queries INT NOT NULL DEFAULT 0,
    query_due_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX idx_mpesa_stk_alternates_due ON public.mpesa_stk_alternates (query_due_at)
    WHERE status = 'to_query';
ALTER TABLE public.mpesa_stk_alternates ENABLE ROW LEVEL SECURITY;

DROP FUNCTION public.ledger_credit_topup(TEXT, BOOLEAN, NUMERIC, TEXT, TEXT);
DROP FUNCTION public.ledger_credit_stk(UUID, TEXT, BOOLEAN, NUMERIC, TEXT, TEXT);

-- An STK verdict, crediting a top-up at most once whatever arrives:
-- * by its own CheckoutRequestID (a callback or an STK query), as before; a success after a failure verdict
--   still credits (M-Pesa's word that it was paid wins; a failed top-up moved no money);
-- * a callback naming the top-up (`.../stk/<id>`) binds a push whose answer was lost;
-- * another CheckoutRequestID for a top-up that has one is an alternate: unverified (a callback), it is only
--   recorded for an STK query ('needs_query'); verified (`p_verified`: the STK query said so), it replaces
--   the top-up's push and credits, unless the top-up is credited already ('paid_twice': for a person);
-- * `p_checkout_request_id` NULL with `p_verified`: Pull Transactions found the payment of a push whose
--   answer was lost (p_receipt = its TransID).
CREATE FUNCTION public.ledger_credit_stk(p_topup_id UUID, p_checkout_request_id TEXT, p_success BOOLEAN,
    p_amount NUMERIC, p_receipt TEXT, p_error TEXT, p_verified BOOLEAN DEFAULT false) RETURNS TEXT
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    v_id UUID;
    v_user UUID;
    v_row mpesa_transactions%ROWTYPE;
BEGIN
    IF coalesce(p_checkout_request_id, '') <> '' THEN
        SELECT id, user_id INTO v_id, v_user FROM mpesa_transactions
        WHERE checkout_request_id = p_checkout_request_id;
        IF v_id IS NULL THEN
            SELECT a.topup_id, m.user_id INTO v_id, v_user
            FROM mpesa_stk_alternates a JOIN mpesa_transactions m ON m.id = a.topup_id
            WHERE a.checkout_request_id = p_checkout_request_id;
        END IF;
    ELSIF NOT p_verified THEN
        RETURN 'not_found';
    END IF;
    IF v_id IS NULL AND p_topup_id IS NOT NULL THEN
        SELECT id, user_id INTO v_id, v_user FROM mpesa_transactions WHERE id = p_topup_id;
    END IF;
    IF v_id IS NULL THEN
        RETURN 'not_found';
    END IF;
    PERFORM 1 FROM profiles WHERE id = v_user FOR UPDATE;
    SELECT * INTO v_row FROM mpesa_transactions WHERE id = v_id FOR UPDATE;

    IF coalesce(p_checkout_request_id, '') = '' THEN
        NULL;  -- verified by Pull Transactions: the top-up itself
    ELSIF v_row.checkout_request_id IS NULL THEN
        IF EXISTS (SELECT 1 FROM mpesa_transactions WHERE checkout_request_id = p_checkout_request_id) THEN
            RETURN 'not_found';  -- that push belongs to another top-up
        END IF;
        DELETE FROM mpesa_stk_alternates WHERE checkout_request_id = p_checkout_request_id;
        UPDATE mpesa_transactions SET checkout_request_id = p_checkout_request_id
        WHERE id = v_id
        RETURNING * INTO v_row;
    ELSIF v_row.checkout_request_id <> p_checkout_request_id THEN
        IF NOT p_verified THEN
            INSERT INTO mpesa_stk_alternates (checkout_request_id, topup_id) VALUES (p_checkout_request_id, v_id)
            ON CONFLICT (checkout_request_id) DO NOTHING;
            RETURN 'needs_query';
        END IF;
        INSERT INTO mpesa_stk_alternates (checkout_request_id, topup_id) VALUES (p_checkout_request_id, v_id)
        ON CONFLICT (checkout_request_id) DO NOTHING;
        IF NOT p_success THEN
            UPDATE mpesa_stk_alternates SET status = 'unpaid' WHERE checkout_request_id = p_checkout_request_id;
            RETURN 'already_settled';
        END IF;
        IF v_row.status = 'completed' THEN
            UPDATE mpesa_stk_alternates SET status = 'paid_twice'
            WHERE checkout_request_id = p_checkout_request_id;
            RETURN 'paid_twice';
        END IF;
        IF p_amount IS NOT NULL AND p_amount <> v_row.amount THEN
            RETURN 'amount_mismatch';
        END IF;
        -- The paid push replaces the top-up's; the replaced one is queried like any alternate.
        DELETE FROM mpesa_stk_alternates WHERE checkout_request_id = p_checkout_request_id;
        INSERT INTO mpesa_stk_alternates (checkout_request_id, topup_id)
        VALUES (v_row.checkout_request_id, v_id)
        ON CONFLICT (checkout_request_id) DO UPDATE SET status = 'to_query', query_due_at = now();
        UPDATE mpesa_transactions SET checkout_request_id = p_checkout_request_id WHERE id = v_id
        RETURNING * INTO v_row;
    END IF;

    IF v_row.status = 'completed' THEN
        RETURN 'already_settled';
    END IF;
    IF v_row.status = 'failed' AND NOT p_success THEN
        RETURN 'already_settled';
    END IF;
    IF p_success THEN
        IF p_amount IS NOT NULL AND p_amount <> v_row.amount THEN
            RETURN 'amount_mismatch';
        END IF;
        UPDATE mpesa_transactions
        SET status = 'completed', mpesa_receipt_number = p_receipt, completed_at = now(), error_message = NULL,
            push_unknown_since = NULL
        WHERE id = v_row.id;
        PERFORM update_user_balance(v_user, NULL, v_row.amount, 'topup', v_row.id);
        RETURN 'credited';
    END IF;
    UPDATE mpesa_transactions
    SET status = 'failed', error_message = coalesce(nullif(p_error, ''), 'top-up failed'), completed_at = now()
    WHERE id = v_row.id;
    RETURN 'failed';
END;
$$;

CREATE FUNCTION public.ledger_credit_topup(p_checkout_request_id TEXT, p_success BOOLEAN,
    p_amount NUMERIC, p_receipt TEXT, p_error TEXT) RETURNS TEXT
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
BEGIN
    RETURN ledger_credit_stk(NULL, p_checkout_request_id, p_success, p_amount, p_receipt, p_error, false);
END;
$$;

-- ---------------------------------------------------------------------------------------------------------
-- Sessions: a user ends only their own session's proposals; the sweeper uses the server-side variant.
-- ---------------------------------------------------------------------------------------------------------

DROP FUNCTION public.ledger_cancel_session(TEXT, TEXT);

CREATE FUNCTION public.ledger_cancel_session(p_session_id TEXT, p_user_id UUID,
    p_reason TEXT DEFAULT 'session_ended') RETURNS INT
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    v_due RECORD;
    v_tx transactions%ROWTYPE;
    v_count INT := 0;
BEGIN
    IF p_user_id IS NULL THEN
        PERFORM ledger_fail('invalid_input', 'whose session is it?');
    END IF;
    PERFORM 1 FROM profiles WHERE id = p_user_id FOR UPDATE;
    FOR v_due IN
        SELECT id FROM transactions
        WHERE status = 'pending' AND session_id = p_session_id AND user_id = p_user_id ORDER BY id
    LOOP
        SELECT * INTO v_tx FROM transactions WHERE id = v_due.id FOR UPDATE;
        IF v_tx.status = 'pending' THEN
            PERFORM ledger_void(v_tx, p_reason);
            v_count := v_count + 1;
        END IF;
    END LOOP;
    RETURN v_count;
END;
$$;

-- Server side only (the expiry sweeper): every pending proposal of the session, whoever's.
CREATE FUNCTION public.ledger_cancel_session_server(p_session_id TEXT, p_reason TEXT DEFAULT 'session_ended')
RETURNS INT
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    v_user UUID;
    v_count INT := 0;
BEGIN
    FOR v_user IN
        SELECT DISTINCT user_id FROM transactions WHERE status = 'pending' AND session_id = p_session_id
        ORDER BY user_id
    LOOP
        v_count := v_count + ledger_cancel_session(p_session_id, v_user, p_reason);
    END LOOP;
    RETURN v_count;
END;
$$;

-- ---------------------------------------------------------------------------------------------------------
-- Privileges. Supabase grants ALL on every table, sequence and function in `public` to anon,
-- authenticated and service_role, by default privileges too; PostgreSQL grants EXECUTE on functions to
-- PUBLIC. Here everything in `public` is taken back from anon, authenticated and PUBLIC, new objects are
-- made private by default, and users get back exactly what the app needs (row level security still decides
-- which rows). service_role (the server's key on Supabase) is left as Supabase sets it.
-- ---------------------------------------------------------------------------------------------------------

DO $$
DECLARE
    r RECORD;
BEGIN
    FOR r IN
        SELECT c.oid::regclass AS obj, c.relkind FROM pg_class c
        WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
          AND NOT EXISTS (SELECT 1 FROM pg_depend d
                          WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
    LOOP
        IF r.relkind = 'S' THEN
            EXECUTE format('REVOKE ALL ON SEQUENCE %s FROM PUBLIC, anon, authenticated', r.obj);
        ELSE
            EXECUTE format('REVOKE ALL ON TABLE %s FROM PUBLIC, anon, authenticated', r.obj);
        END IF;
    END LOOP;
    FOR r IN
        SELECT p.oid::regprocedure AS obj, p.prokind FROM pg_proc p
        WHERE p.pronamespace = 'public'::regnamespace AND p.prokind IN ('f', 'p')
          AND NOT EXISTS (SELECT 1 FROM pg_depend d
                          WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')
    LOOP
        EXECUTE format('REVOKE ALL ON %s %s FROM PUBLIC, anon, authenticated',
                       CASE WHEN r.prokind = 'p' THEN 'PROCEDURE' ELSE 'FUNCTION' END, r.obj);
    END LOOP;
END
$$;

-- Objects that later migrations create (as this same role) are private unless granted explicitly.
ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE ALL ON TABLES FROM PUBLIC, anon, authenticated;
ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE ALL ON SEQUENCES FROM PUBLIC, anon, authenticated;
ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE ALL ON FUNCTIONS FROM PUBLIC, anon, authenticated;
-- PUBLIC's EXECUTE on new functions is a global default: only a global statement takes it away.
ALTER DEFAULT PRIVILEGES REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;

-- What a signed-in user may do (the founding policies limit it to their own rows). anon: nothing.
GRANT USAGE ON SCHEMA public TO authenticated;
GRANT SELECT ON public.transactions, public.balance_history, public.mpesa_transactions, public.subscriptions,
    public.voice_sessions, public.subscription_plans
TO authenticated;
GRANT SELECT, INSERT, UPDATE, DELETE ON public.payment_methods, public.contacts TO authenticated;
GRANT SELECT (id, phone_number, mpesa_number, wallet_balance, held_balance, pin_set, mpesa_auto_topup,
              mpesa_auto_topup_threshold, mpesa_auto_topup_amount, card_auto_topup, default_payment_method,
              biometric_enabled, created_at, updated_at, last_login, pin_failed_attempts, pin_locked_until)
    ON public.profiles TO authenticated;
GRANT UPDATE (mpesa_auto_topup, mpesa_auto_topup_threshold, mpesa_auto_topup_amount, card_auto_topup,
              default_payment_method, biometric_enabled)
    ON public.profiles TO authenticated;
