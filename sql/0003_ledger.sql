-- The money ledger (spec: ledger.md): holds, fees, versions and expiry of proposals, idempotent confirmation,
-- the payout outbox, settlement, top-ups and auto top-up. Every rule that protects money is enforced here, in
-- one database transaction per operation, so that a crash or a concurrent caller can never half-apply one.
--
-- Errors of the ledger functions are raised with SQLSTATE 'OPL01': MESSAGE is a stable code
-- (`insufficient_balance`, `stale_version`, ...) and DETAIL a sentence for people.
--
-- balance_history reasons: opening_balance (one per user, from 0, no transaction), debit and fee (confirm),
-- refund and fee_refund (a failed payout), bank_credit and bank_credit_fee (a completed bank_to_mpesa:
-- +amount then -fee), topup (a completed M-Pesa top-up; carries topup_id).

-- PROFILES: the sum of the holds of the user's pending proposals.
ALTER TABLE public.profiles
    ADD COLUMN held_balance NUMERIC(12,2) NOT NULL DEFAULT 0;
ALTER TABLE public.profiles
    ADD CONSTRAINT profiles_held_balance_check CHECK (held_balance >= 0 AND wallet_balance - held_balance >= 0);

-- TRANSACTIONS: what a proposal needs to be held, versioned, expired and confirmed once.
ALTER TABLE public.transactions
    ADD COLUMN fee NUMERIC(12,2) NOT NULL DEFAULT 0,
    ADD COLUMN version INT NOT NULL DEFAULT 1,
    ADD COLUMN hold_amount NUMERIC(12,2) NOT NULL DEFAULT 0,
    ADD COLUMN session_id TEXT,
    ADD COLUMN expires_at TIMESTAMPTZ,
    ADD COLUMN confirmed_at TIMESTAMPTZ,
    ADD COLUMN confirm_result JSONB;
ALTER TABLE public.transactions
    ADD CONSTRAINT transactions_fee_check CHECK (fee >= 0 AND fee < amount),
    ADD CONSTRAINT transactions_version_check CHECK (version >= 1),
    ADD CONSTRAINT transactions_hold_amount_check CHECK (hold_amount >= 0),
    ADD CONSTRAINT transactions_confirmed_check CHECK (
        (status IN ('processing', 'completed', 'failed')) = (confirmed_at IS NOT NULL)
    );

-- Pending proposals (the expiry sweeper, ended sessions).
CREATE INDEX idx_transactions_pending_expiry ON public.transactions (expires_at) WHERE status = 'pending';
CREATE INDEX idx_transactions_pending_session ON public.transactions (session_id) WHERE status = 'pending';

-- BALANCE HISTORY: a top-up's credit names its mpesa_transactions row (it has no transactions row), and
-- `seq` orders a user's rows as they were written (under the profile lock), so the chain is checkable.
ALTER TABLE public.balance_history
    ADD COLUMN topup_id UUID REFERENCES public.mpesa_transactions(id) ON DELETE SET NULL,
    ADD COLUMN seq BIGINT GENERATED ALWAYS AS IDENTITY;
CREATE INDEX idx_balance_history_transaction ON public.balance_history (transaction_id)
    WHERE transaction_id IS NOT NULL;
CREATE UNIQUE INDEX idx_balance_history_topup_once ON public.balance_history (topup_id)
    WHERE topup_id IS NOT NULL;

-- MPESA TRANSACTIONS: top-ups asked by the user or started by auto top-up (at most one pending per user).
ALTER TABLE public.mpesa_transactions
    ADD COLUMN kind TEXT NOT NULL DEFAULT 'topup' CHECK (kind IN ('topup', 'auto_topup'));
ALTER TABLE public.mpesa_transactions
    ADD CONSTRAINT mpesa_transactions_amount_check CHECK (amount > 0) NOT VALID;
CREATE UNIQUE INDEX idx_mpesa_one_pending_auto_topup ON public.mpesa_transactions (user_id)
    WHERE kind = 'auto_topup' AND status = 'pending';

-- PAYOUT OUTBOX: written in the same database transaction as the debit; the payout worker sends it.
-- One row per transaction (UNIQUE), so a payout can never be queued twice.
CREATE TABLE public.payout_outbox (
    id BIGSERIAL PRIMARY KEY,
    transaction_id UUID NOT NULL UNIQUE REFERENCES public.transactions(id),
    user_id UUID NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('mpesa_payout', 'bank_credit')),
    status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'settled', 'dead')),
    attempts INT NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_error TEXT,
    conversation_id TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    sent_at TIMESTAMPTZ,
    settled_at TIMESTAMPTZ
);
CREATE INDEX idx_payout_outbox_due ON public.payout_outbox (status, next_attempt_at);
-- Server-side only: row level security on and no grant to `authenticated`.
ALTER TABLE public.payout_outbox ENABLE ROW LEVEL SECURITY;

-- LEDGER USAGE: per user and Nairobi calendar day, the transactions that reached processing (count: the
-- monthly limit) and the amount of those still processing or completed (the daily limit). Kept by
-- ledger_confirm / ledger_settle under the profile lock, so a limit check is one index lookup instead of a
-- scan of the user's transactions (a busy wallet would otherwise slow down with every payment).
-- ledger.invariants checks that it always agrees with `transactions`.
CREATE TABLE public.ledger_usage (
    user_id UUID NOT NULL REFERENCES auth.users(id) ON DELETE CASCADE,
    day DATE NOT NULL,
    confirmed_count INT NOT NULL DEFAULT 0 CHECK (confirmed_count >= 0),
    confirmed_amount NUMERIC(14,2) NOT NULL DEFAULT 0 CHECK (confirmed_amount >= 0),
    PRIMARY KEY (user_id, day)
);
ALTER TABLE public.ledger_usage ENABLE ROW LEVEL SECURITY;


-- ---------------------------------------------------------------------------------------------------------
-- Helpers
-- ---------------------------------------------------------------------------------------------------------

CREATE FUNCTION public.ledger_fail(p_code TEXT, p_detail TEXT) RETURNS VOID
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
BEGIN
    RAISE EXCEPTION USING ERRCODE = 'OPL01', MESSAGE = p_code, DETAIL = p_detail;
END;
$$;

-- The fee rate and monthly limit of the user's plan: the active subscription covering p_now, else 'free'.
CREATE FUNCTION public.ledger_user_terms(p_user_id UUID, p_now TIMESTAMPTZ,
    OUT fee_rate NUMERIC, OUT monthly_limit INT)
LANGUAGE plpgsql STABLE SET search_path = public, pg_temp AS $$
BEGIN
    SELECT s.transaction_fee_percentage, s.monthly_transaction_limit INTO fee_rate, monthly_limit
    FROM subscriptions s
    WHERE s.user_id = p_user_id AND s.status = 'active'
      AND p_now >= s.current_period_start AND p_now < s.current_period_end
    ORDER BY s.current_period_start DESC
    LIMIT 1;
    IF NOT FOUND THEN
        SELECT p.transaction_fee_percentage, p.monthly_transaction_limit INTO fee_rate, monthly_limit
        FROM subscription_plans p WHERE p.id = 'free';
    END IF;
END;
$$;

-- Refuses an intent that is not a well-formed payment of its type (codes as the intent parser's).
CREATE FUNCTION public.ledger_check_intent(p_type TEXT, p_amount NUMERIC, p_phone TEXT, p_till TEXT,
    p_paybill TEXT, p_account TEXT, p_agent TEXT, p_store TEXT, p_bank_code TEXT) RETURNS VOID
LANGUAGE plpgsql IMMUTABLE SET search_path = public, pg_temp AS $$
BEGIN
    IF p_type IS NULL OR p_type NOT IN ('send_phone', 'buy_goods_pochi', 'buy_goods_till', 'paybill',
                                        'withdraw', 'bank_to_mpesa', 'mpesa_to_bank') THEN
        PERFORM ledger_fail('invalid_type', 'unknown transaction type');
    END IF;
    IF p_amount IS NULL OR p_amount <= 0 THEN
        PERFORM ledger_fail('amount_not_positive', 'the amount must be more than zero');
    END IF;
    IF p_amount <> round(p_amount, 2) THEN
        PERFORM ledger_fail('invalid_amount', 'amounts have at most two decimal places');
    END IF;
    IF p_amount > 250000 THEN
        PERFORM ledger_fail('amount_above_limit', 'one transaction may be at most KES 250,000');
    END IF;
    IF p_type IN ('send_phone', 'buy_goods_pochi') AND coalesce(p_phone, '') !~ '^254[17][0-9]{8}$' THEN
        PERFORM ledger_fail('invalid_phone', 'a Kenyan mobile number 2547XXXXXXXX or 2541XXXXXXXX is needed');
    END IF;
    IF p_type = 'buy_goods_till' AND coalesce(p_till, '') !~ '^[0-9]{5,7}$' THEN
        PERFORM ledger_fail('invalid_recipient', 'a till number of 5 to 7 digits is needed');
    END IF;
    IF p_type = 'paybill' AND coalesce(p_paybill, '') !~ '^[0-9]{5,7}$' THEN
        PERFORM ledger_fail('invalid_recipient', 'a paybill number of 5 to 7 digits is needed');
    END IF;
    IF p_type IN ('paybill', 'mpesa_to_bank') AND coalesce(p_account, '') !~ '^[A-Za-z0-9]{1,20}$' THEN
        PERFORM ledger_fail('invalid_recipient', 'an account number of 1 to 20 letters and digits is needed');
    END IF;
    IF p_type = 'withdraw' AND (coalesce(p_agent, '') !~ '^[0-9]{5,7}$'
                                OR coalesce(p_store, '') !~ '^[0-9]{1,7}$') THEN
        PERFORM ledger_fail('invalid_recipient', 'an agent number (5 to 7 digits) and a store number are needed');
    END IF;
    IF p_type IN ('bank_to_mpesa', 'mpesa_to_bank') AND coalesce(p_bank_code, '') !~ '^[0-9]{2}$' THEN
        PERFORM ledger_fail('invalid_recipient', 'a bank code of two digits is needed');
    END IF;
    IF p_type = 'send_phone' AND p_amount < 10 THEN
        PERFORM ledger_fail('below_minimum', 'an M-Pesa payout is at least KES 10');
    END IF;
    IF p_type = 'withdraw' AND p_amount < 50 THEN
        PERFORM ledger_fail('below_minimum', 'a withdrawal is at least KES 50');
    END IF;
END;
$$;

-- The calendar day of p_now in Nairobi (the limits' day and month).
CREATE FUNCTION public.ledger_nairobi_day(p_now TIMESTAMPTZ) RETURNS DATE
LANGUAGE sql IMMUTABLE SET search_path = public, pg_temp AS $$
    SELECT (p_now AT TIME ZONE 'Africa/Nairobi')::date
$$;

-- The limit a payment would break ('monthly_limit' | 'daily_limit'), or NULL. Call with the profile row
-- locked: the usage then includes every confirmation of this user committed before.
CREATE FUNCTION public.ledger_limit_refusal(p_user_id UUID, p_amount NUMERIC, p_monthly_limit INT,
    p_now TIMESTAMPTZ) RETURNS TEXT
LANGUAGE plpgsql STABLE SET search_path = public, pg_temp AS $$
DECLARE
    v_today DATE := ledger_nairobi_day(p_now);
    v_amount NUMERIC;
    v_month INT;
BEGIN
    IF p_monthly_limit IS NOT NULL THEN
        SELECT coalesce(sum(confirmed_count), 0) INTO v_month FROM ledger_usage
        WHERE user_id = p_user_id AND day >= date_trunc('month', v_today)::date AND day <= v_today;
        IF v_month >= p_monthly_limit THEN
            RETURN 'monthly_limit';
        END IF;
    END IF;
    SELECT confirmed_amount INTO v_amount FROM ledger_usage WHERE user_id = p_user_id AND day = v_today;
    IF coalesce(v_amount, 0) + p_amount > 500000 THEN
        RETURN 'daily_limit';
    END IF;
    RETURN NULL;
END;
$$;

CREATE FUNCTION public.ledger_limit_message(p_code TEXT) RETURNS TEXT
LANGUAGE sql IMMUTABLE SET search_path = public, pg_temp AS $$
    SELECT CASE p_code
        WHEN 'monthly_limit' THEN 'your plan''s monthly number of transactions is used up'
        WHEN 'daily_limit' THEN 'at most KES 500,000 a day'
        ELSE p_code END
$$;


-- ---------------------------------------------------------------------------------------------------------
-- The one locking function for every balance change (the founding update_user_balance, replaced: it now
-- respects the holds, names a missing user, and can name the top-up it credits). Lock order everywhere in the
-- ledger: the profile row first, then the transactions / mpesa_transactions row.
-- ---------------------------------------------------------------------------------------------------------

DROP FUNCTION public.update_user_balance(UUID, UUID, DECIMAL, TEXT);

CREATE FUNCTION public.update_user_balance(
    p_user_id UUID,
    p_transaction_id UUID,
    p_change_amount DECIMAL(12,2),
    p_reason TEXT,
    p_topup_id UUID DEFAULT NULL,
    p_release_hold NUMERIC DEFAULT 0
) RETURNS NUMERIC
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    v_current NUMERIC(12,2);
    v_held NUMERIC(12,2);
    v_new NUMERIC(12,2);
BEGIN
    SELECT wallet_balance, held_balance - p_release_hold INTO v_current, v_held
    FROM profiles WHERE id = p_user_id FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM ledger_fail('user_not_found', 'no such user');
    END IF;
    v_current := coalesce(v_current, 0);
    v_new := v_current + p_change_amount;
    IF v_new < 0 OR v_new - v_held < 0 THEN
        PERFORM ledger_fail('insufficient_balance', 'Insufficient balance');
    END IF;
    -- (p_release_hold: a confirmation posts its hold in the same row update as its debit)
    UPDATE profiles SET wallet_balance = v_new, held_balance = v_held, updated_at = now() WHERE id = p_user_id;
    INSERT INTO balance_history (user_id, transaction_id, previous_balance, new_balance, change_amount,
                                 reason, topup_id)
    VALUES (p_user_id, p_transaction_id, v_current, v_new, p_change_amount, p_reason, p_topup_id);
    RETURN v_new;
END;
$$;


-- ---------------------------------------------------------------------------------------------------------
-- Propose, revise, confirm, cancel, expire
-- ---------------------------------------------------------------------------------------------------------

-- What a proposal of these fields costs the user and whether it fits, for propose and revise alike:
-- the payout phone (a cash-out goes to the user's own number), the fee of the user's plan, the hold, and
-- every refusal (fields, limits, available balance counting `p_released` that this proposal already holds).
-- The caller holds the profile lock.
CREATE FUNCTION public.ledger_price(p_profile profiles, p_type TEXT, p_amount NUMERIC,
    p_phone TEXT, p_till TEXT, p_paybill TEXT, p_account TEXT, p_agent TEXT, p_store TEXT, p_bank_code TEXT,
    p_confidence_score INT, p_now TIMESTAMPTZ, p_released NUMERIC,
    OUT phone TEXT, OUT fee NUMERIC(12,2), OUT hold NUMERIC(12,2))
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    v_terms RECORD;
    v_refusal TEXT;
    v_available NUMERIC := p_profile.wallet_balance - p_profile.held_balance + p_released;
BEGIN
    phone := CASE WHEN p_type = 'withdraw'
                  THEN coalesce(nullif(p_profile.mpesa_number, ''), p_profile.phone_number)
                  ELSE coalesce(p_phone, '') END;
    PERFORM ledger_check_intent(p_type, p_amount, phone, p_till, p_paybill, p_account, p_agent, p_store,
                                p_bank_code);
    IF p_confidence_score IS NOT NULL AND (p_confidence_score < 0 OR p_confidence_score > 100) THEN
        PERFORM ledger_fail('invalid_input', 'confidence must be 0 to 100');
    END IF;
    SELECT * INTO v_terms FROM ledger_user_terms(p_profile.id, p_now);
    fee := round(p_amount * v_terms.fee_rate, 2);
    hold := CASE WHEN p_type = 'bank_to_mpesa' THEN 0 ELSE p_amount + fee END;
    IF hold > v_available THEN
        PERFORM ledger_fail('insufficient_balance', format('KES %s needed, KES %s available', hold, v_available));
    END IF;
    v_refusal := ledger_limit_refusal(p_profile.id, p_amount, v_terms.monthly_limit, p_now);
    IF v_refusal IS NOT NULL THEN
        PERFORM ledger_fail(v_refusal, ledger_limit_message(v_refusal));
    END IF;
END;
$$;

-- A proposal read back to the user: a pending row holding amount + fee (bank_to_mpesa holds nothing: its
-- money comes in). Refused, leaving nothing behind, when it does not fit.
CREATE FUNCTION public.ledger_propose(
    p_user_id UUID, p_type TEXT, p_amount NUMERIC,
    p_phone TEXT, p_till TEXT, p_paybill TEXT, p_account TEXT, p_agent TEXT, p_store TEXT, p_bank_code TEXT,
    p_confidence_score INT, p_voice_command_text TEXT, p_session_id TEXT,
    p_now TIMESTAMPTZ DEFAULT NULL, p_ttl_seconds INT DEFAULT 120
) RETURNS public.transactions
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    v_now TIMESTAMPTZ := coalesce(p_now, now());
    v_profile profiles%ROWTYPE;
    v_price RECORD;
    v_row transactions%ROWTYPE;
BEGIN
    SELECT * INTO v_profile FROM profiles WHERE id = p_user_id FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM ledger_fail('user_not_found', 'no such user');
    END IF;
    SELECT * INTO v_price FROM ledger_price(v_profile, p_type, p_amount, p_phone, p_till, p_paybill, p_account,
                                            p_agent, p_store, p_bank_code, p_confidence_score, v_now, 0);

    UPDATE profiles SET held_balance = held_balance + v_price.hold WHERE id = p_user_id;
    INSERT INTO transactions (user_id, type, amount, fee, hold_amount, phone, till, paybill, account, agent,
                              store, bank_code, status, confidence_score, voice_command_text, session_id,
                              version, expires_at)
    VALUES (p_user_id, p_type, p_amount, v_price.fee, v_price.hold, v_price.phone, coalesce(p_till, ''),
            coalesce(p_paybill, ''),
            coalesce(p_account, ''), coalesce(p_agent, ''), coalesce(p_store, ''), coalesce(p_bank_code, ''),
            'pending', p_confidence_score, p_voice_command_text, p_session_id,
            1, v_now + make_interval(secs => p_ttl_seconds))
    RETURNING * INTO v_row;
    RETURN v_row;
END;
$$;

-- A correction: the same pending row gets new fields, version + 1, a new hold and a fresh expiry.
-- A confirmation for the older version is refused from now on (stale_version).
CREATE FUNCTION public.ledger_revise(
    p_transaction_id UUID, p_user_id UUID, p_type TEXT, p_amount NUMERIC,
    p_phone TEXT, p_till TEXT, p_paybill TEXT, p_account TEXT, p_agent TEXT, p_store TEXT, p_bank_code TEXT,
    p_confidence_score INT, p_voice_command_text TEXT,
    p_now TIMESTAMPTZ DEFAULT NULL, p_ttl_seconds INT DEFAULT 120
) RETURNS public.transactions
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    v_now TIMESTAMPTZ := coalesce(p_now, now());
    v_profile profiles%ROWTYPE;
    v_tx transactions%ROWTYPE;
    v_price RECORD;
BEGIN
    SELECT * INTO v_profile FROM profiles WHERE id = p_user_id FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM ledger_fail('user_not_found', 'no such user');
    END IF;
    SELECT * INTO v_tx FROM transactions WHERE id = p_transaction_id AND user_id = p_user_id FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM ledger_fail('not_found', 'no such proposal');
    END IF;
    IF v_tx.status = 'cancelled' THEN
        PERFORM ledger_fail(CASE WHEN v_tx.error_message = 'expired' THEN 'expired' ELSE 'cancelled' END,
                            'the proposal was cancelled');
    ELSIF v_tx.status <> 'pending' THEN
        PERFORM ledger_fail('already_confirmed', 'the proposal was already confirmed');
    ELSIF v_now >= v_tx.expires_at THEN
        PERFORM ledger_fail('expired', 'the proposal expired');
    END IF;
    SELECT * INTO v_price FROM ledger_price(v_profile, p_type, p_amount, p_phone, p_till, p_paybill, p_account,
                                            p_agent, p_store, p_bank_code, p_confidence_score, v_now,
                                            v_tx.hold_amount);

    UPDATE profiles SET held_balance = held_balance - v_tx.hold_amount + v_price.hold WHERE id = p_user_id;
    UPDATE transactions
    SET type = p_type, amount = p_amount, fee = v_price.fee, hold_amount = v_price.hold, phone = v_price.phone,
        till = coalesce(p_till, ''), paybill = coalesce(p_paybill, ''), account = coalesce(p_account, ''),
        agent = coalesce(p_agent, ''), store = coalesce(p_store, ''), bank_code = coalesce(p_bank_code, ''),
        confidence_score = p_confidence_score,
        voice_command_text = coalesce(p_voice_command_text, voice_command_text),
        version = version + 1, expires_at = v_now + make_interval(secs => p_ttl_seconds)
    WHERE id = p_transaction_id
    RETURNING * INTO v_tx;
    RETURN v_tx;
END;
$$;

-- Voids a pending proposal's hold. Internal: the caller holds the profile and transaction locks.
CREATE FUNCTION public.ledger_void(p_tx transactions, p_reason TEXT) RETURNS public.transactions
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    v_row transactions%ROWTYPE;
BEGIN
    UPDATE profiles SET held_balance = held_balance - p_tx.hold_amount WHERE id = p_tx.user_id;
    UPDATE transactions SET status = 'cancelled', error_message = p_reason
    WHERE id = p_tx.id
    RETURNING * INTO v_row;
    RETURN v_row;
END;
$$;

-- Confirmation, idempotent by (proposal id, version): the first one posts the hold (debit amount, then fee),
-- moves the row to processing and queues the payout in the outbox; every later one, concurrent or not,
-- returns the stored result with outcome 'already_confirmed' and moves no money.
-- Returns JSON (amounts as decimal strings, never JSON numbers); refusals that change state (expiry, limits reached at confirm time: the proposal is
-- cancelled and its hold voided) come back as {"error": code, "message": ...} so that the change commits.
CREATE FUNCTION public.ledger_confirm(
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
    END IF;

    v_result := jsonb_build_object(
        'outcome', 'confirmed', 'transaction_id', v_tx.id, 'version', v_tx.version, 'status', 'processing',
        'type', v_tx.type, 'amount', v_tx.amount::text, 'fee', v_tx.fee::text,
        'voice_verified', coalesce(p_voice_verified, false), 'wallet_balance', v_wallet::text,
        'available', (v_wallet - (v_profile.held_balance - v_tx.hold_amount))::text,
        'confirmed_at', v_now, 'auto_topup_id', v_topup_id);
    UPDATE transactions
    SET status = 'processing', confirmed_at = v_now, voice_verified = coalesce(p_voice_verified, false),
        confirm_result = v_result
    WHERE id = v_tx.id;
    INSERT INTO ledger_usage AS u (user_id, day, confirmed_count, confirmed_amount)
    VALUES (p_user_id, ledger_nairobi_day(v_now), 1, v_tx.amount)
    ON CONFLICT (user_id, day) DO UPDATE
    SET confirmed_count = u.confirmed_count + 1, confirmed_amount = u.confirmed_amount + excluded.confirmed_amount;
    INSERT INTO payout_outbox (transaction_id, user_id, kind)
    VALUES (v_tx.id, p_user_id, CASE WHEN v_tx.type = 'bank_to_mpesa' THEN 'bank_credit' ELSE 'mpesa_payout' END);
    RETURN v_result;
END;
$$;

-- The user said no: the hold is voided. Cancelling a cancelled proposal changes nothing; a confirmed one
-- cannot be cancelled (already_confirmed).
CREATE FUNCTION public.ledger_cancel(p_transaction_id UUID, p_user_id UUID, p_reason TEXT)
RETURNS public.transactions
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    v_tx transactions%ROWTYPE;
BEGIN
    PERFORM 1 FROM profiles WHERE id = p_user_id FOR UPDATE;
    SELECT * INTO v_tx FROM transactions WHERE id = p_transaction_id AND user_id = p_user_id FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM ledger_fail('not_found', 'no such proposal');
    END IF;
    IF v_tx.status = 'cancelled' THEN
        RETURN v_tx;
    ELSIF v_tx.status <> 'pending' THEN
        PERFORM ledger_fail('already_confirmed', 'the proposal was already confirmed');
    END IF;
    RETURN ledger_void(v_tx, coalesce(nullif(p_reason, ''), 'cancelled'));
END;
$$;

-- The sweeper: cancels every pending proposal whose 120 s ran out (reason 'expired'); returns how many.
CREATE FUNCTION public.ledger_expire_due(p_now TIMESTAMPTZ DEFAULT NULL) RETURNS INT
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    v_now TIMESTAMPTZ := coalesce(p_now, now());
    v_due RECORD;
    v_tx transactions%ROWTYPE;
    v_count INT := 0;
BEGIN
    FOR v_due IN
        SELECT id, user_id FROM transactions WHERE status = 'pending' AND expires_at <= v_now
        ORDER BY user_id, id
    LOOP
        PERFORM 1 FROM profiles WHERE id = v_due.user_id FOR UPDATE;
        SELECT * INTO v_tx FROM transactions WHERE id = v_due.id FOR UPDATE;
        IF v_tx.status = 'pending' AND v_tx.expires_at <= v_now THEN
            PERFORM ledger_void(v_tx, 'expired');
            v_count := v_count + 1;
        END IF;
    END LOOP;
    RETURN v_count;
END;
$$;

-- A voice session ended: its pending proposals are voided; returns how many.
CREATE FUNCTION public.ledger_cancel_session(p_session_id TEXT, p_reason TEXT DEFAULT 'session_ended')
RETURNS INT
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    v_due RECORD;
    v_tx transactions%ROWTYPE;
    v_count INT := 0;
BEGIN
    FOR v_due IN
        SELECT id, user_id FROM transactions WHERE status = 'pending' AND session_id = p_session_id
        ORDER BY user_id, id
    LOOP
        PERFORM 1 FROM profiles WHERE id = v_due.user_id FOR UPDATE;
        SELECT * INTO v_tx FROM transactions WHERE id = v_due.id FOR UPDATE;
        IF v_tx.status = 'pending' THEN
            PERFORM ledger_void(v_tx, p_reason);
            v_count := v_count + 1;
        END IF;
    END LOOP;
    RETURN v_count;
END;
$$;


-- ---------------------------------------------------------------------------------------------------------
-- Settlement (called by the payout worker on the gateway's result) and top-ups
-- ---------------------------------------------------------------------------------------------------------

-- Exactly once per transaction: processing -> completed (receipt) or failed (amount and fee refunded; for
-- bank_to_mpesa, success credits amount then -fee and failure moves no money). Marks the outbox row settled.
-- Returns completed | failed | already_settled | not_processing | not_found.
CREATE FUNCTION public.ledger_settle(p_transaction_id UUID, p_success BOOLEAN, p_receipt TEXT, p_error TEXT)
RETURNS TEXT
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
    IF v_tx.status IN ('completed', 'failed') THEN
        RETURN 'already_settled';
    ELSIF v_tx.status <> 'processing' THEN
        RETURN 'not_processing';
    END IF;

    IF p_success THEN
        IF v_tx.type = 'bank_to_mpesa' THEN
            PERFORM update_user_balance(v_user, v_tx.id, v_tx.amount, 'bank_credit');
            PERFORM update_user_balance(v_user, v_tx.id, -v_tx.fee, 'bank_credit_fee');
        END IF;
        UPDATE transactions
        SET status = 'completed', mpesa_transaction_id = coalesce(p_receipt, ''), completed_at = now()
        WHERE id = v_tx.id;
    ELSE
        IF v_tx.type <> 'bank_to_mpesa' THEN
            PERFORM update_user_balance(v_user, v_tx.id, v_tx.amount, 'refund');
            PERFORM update_user_balance(v_user, v_tx.id, v_tx.fee, 'fee_refund');
        END IF;
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

-- An STK push's verdict, credited once per paid push, whatever the number or order of callbacks:
-- * a callback may name the top-up row its push was sent for (`.../stk/<id>` in its CallBackURL): when the
--   push's answer was lost (network, 5xx after Daraja accepted it) we never learnt the CheckoutRequestID,
--   and the callback binds it, so the customer's payment is still credited;
-- * M-Pesa's word that a push was paid wins over an earlier failure verdict (an STK query that answered
--   before the customer finished, a callback out of order): a failed top-up moved no money, so crediting it
--   on a later success cannot credit twice;
-- * a success for a second push of the same top-up (an auto top-up retried after a lost answer, paid twice
--   by the customer) is credited as a top-up row of its own, so no paid shilling is lost.
CREATE FUNCTION public.ledger_credit_stk(p_topup_id UUID, p_checkout_request_id TEXT, p_success BOOLEAN,
    p_amount NUMERIC, p_receipt TEXT, p_error TEXT) RETURNS TEXT
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    v_id UUID;
    v_user UUID;
    v_row mpesa_transactions%ROWTYPE;
    v_new UUID;
BEGIN
    IF p_checkout_request_id IS NULL OR p_checkout_request_id = '' THEN
        RETURN 'not_found';
    END IF;
    SELECT id, user_id INTO v_id, v_user FROM mpesa_transactions
    WHERE checkout_request_id = p_checkout_request_id;
    IF NOT FOUND AND p_topup_id IS NOT NULL THEN
        SELECT id, user_id INTO v_id, v_user FROM mpesa_transactions WHERE id = p_topup_id;
    END IF;
    IF v_id IS NULL THEN
        RETURN 'not_found';
    END IF;
    PERFORM 1 FROM profiles WHERE id = v_user FOR UPDATE;
    SELECT * INTO v_row FROM mpesa_transactions WHERE id = v_id FOR UPDATE;

    IF v_row.checkout_request_id IS NULL THEN
        -- The push's answer was lost or is not recorded yet: this callback names the push.
        UPDATE mpesa_transactions SET checkout_request_id = p_checkout_request_id
        WHERE id = v_id
        RETURNING * INTO v_row;
    ELSIF v_row.checkout_request_id <> p_checkout_request_id THEN
        -- Another push sent for the same top-up (a retry after a lost answer).
        IF NOT p_success THEN
            RETURN 'already_settled';
        END IF;
        IF p_amount IS NOT NULL AND p_amount <> v_row.amount THEN
            RETURN 'amount_mismatch';
        END IF;
        INSERT INTO mpesa_transactions (user_id, kind, status, amount, phone_number, checkout_request_id,
                                        mpesa_receipt_number, completed_at, error_message)
        VALUES (v_user, 'topup', 'completed', v_row.amount, v_row.phone_number, p_checkout_request_id,
                p_receipt, now(), format('second STK push of top-up %s', v_row.id))
        RETURNING id INTO v_new;
        PERFORM update_user_balance(v_user, NULL, v_row.amount, 'topup', v_new);
        RETURN 'credited';
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
        SET status = 'completed', mpesa_receipt_number = p_receipt, completed_at = now(), error_message = NULL
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

-- The entry point without a top-up id (callbacks naming none, STK query answers).
CREATE FUNCTION public.ledger_credit_topup(p_checkout_request_id TEXT, p_success BOOLEAN,
    p_amount NUMERIC, p_receipt TEXT, p_error TEXT) RETURNS TEXT
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
BEGIN
    RETURN ledger_credit_stk(NULL, p_checkout_request_id, p_success, p_amount, p_receipt, p_error);
END;
$$;
