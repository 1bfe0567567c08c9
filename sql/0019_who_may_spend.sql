-- Who may spend (spec: ledger.md, "Who may spend"): the whole PIN rule, decided here and only here.
--
-- A token proves who is talking, not that the person is there. Before this migration the PIN threshold was
-- decided by the dialogue and ledger_confirm took no PIN evidence, so any caller of ledger_confirm skipped
-- the PIN, a stolen token paid KES 1,000 as often as it liked, and a locked user still paid small amounts.
-- Now, under the profile's row lock:
--   * ledger_propose / ledger_revise refuse every payment of a locked user (`pin_locked`), and a payment that
--     needs the PIN of a user who has none (`pin_not_set`), before anything is read back; the row they write
--     says whether its confirmation will need the PIN (`needs_pin`), which the read-back tells the person;
--   * ledger_confirm refuses a payment that needs the PIN unless a correct PIN was checked for this user in
--     this same database transaction (`pin_required`, nothing changed: the same proposal can still be
--     finished with the keypad), and refuses a locked user's payment of any amount;
--   * a payment needs the PIN when it is above the threshold, or when the payments confirmed without a PIN
--     since the last one confirmed with it have reached the count, or would pass the total, of the allowance.
--     bank_to_mpesa moves no money out: it needs no PIN, is not locked and does not count.
-- The numbers live in one row, `ledger_rules`, which the server writes from its settings at start-up.

-- THE RULES: one row; SQL reads it, the server seeds it (ONGEA_PIN_THRESHOLD, ONGEA_NO_PIN_COUNT,
-- ONGEA_NO_PIN_AMOUNT, ONGEA_PIN_MAX_ATTEMPTS, ONGEA_PIN_LOCKOUT_SECONDS).
CREATE TABLE public.ledger_rules (
    id BOOLEAN PRIMARY KEY DEFAULT true CHECK (id),
    pin_threshold NUMERIC(12,2) NOT NULL DEFAULT 1000 CHECK (pin_threshold >= 0),
    no_pin_count INT NOT NULL DEFAULT 5 CHECK (no_pin_count >= 0),
    no_pin_amount NUMERIC(12,2) NOT NULL DEFAULT 3000 CHECK (no_pin_amount >= 0),
    pin_max_attempts INT NOT NULL DEFAULT 5 CHECK (pin_max_attempts >= 1),
    pin_lockout_seconds INT NOT NULL DEFAULT 900 CHECK (pin_lockout_seconds >= 1),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
INSERT INTO public.ledger_rules DEFAULT VALUES;
ALTER TABLE public.ledger_rules ENABLE ROW LEVEL SECURITY;

-- THE ALLOWANCE: payments confirmed without a PIN since the last one confirmed with it.
ALTER TABLE public.profiles
    ADD COLUMN no_pin_count INT NOT NULL DEFAULT 0 CHECK (no_pin_count >= 0),
    ADD COLUMN no_pin_amount NUMERIC(14,2) NOT NULL DEFAULT 0 CHECK (no_pin_amount >= 0);

-- What the proposal's confirmation will need (told in the read-back), and how it was confirmed.
ALTER TABLE public.transactions
    ADD COLUMN needs_pin BOOLEAN NOT NULL DEFAULT false,
    ADD COLUMN pin_verified BOOLEAN NOT NULL DEFAULT false;

-- THE EVIDENCE: a correct PIN checked by ledger_pin_attempt, good for one confirmation of that user in the
-- same database transaction (pg_current_xact_id), consumed by it. No role but the ledger's may touch it.
CREATE TABLE public.ledger_pin_evidence (
    user_id UUID PRIMARY KEY REFERENCES public.profiles(id) ON DELETE CASCADE,
    xact xid8 NOT NULL
);
ALTER TABLE public.ledger_pin_evidence ENABLE ROW LEVEL SECURITY;

-- Grants cannot reopen the gate: a user role (authenticated, anon) may never write the PIN, its lock, the
-- allowance, the rules or the evidence, whatever a later GRANT gives it (the ledger runs as its own role).
CREATE FUNCTION public.ledger_gate_guard_profiles() RETURNS TRIGGER
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
    END IF;
    RETURN NEW;
END;
$$;
CREATE FUNCTION public.ledger_gate_guard_tables() RETURNS TRIGGER
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
BEGIN
    IF current_user IN ('authenticated', 'anon') THEN
        RAISE EXCEPTION USING ERRCODE = 'insufficient_privilege',
            MESSAGE = format('%s changes only through the ledger', TG_TABLE_NAME);
    END IF;
    RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
END;
$$;
CREATE TRIGGER profiles_gate_guard BEFORE UPDATE ON public.profiles
    FOR EACH ROW EXECUTE FUNCTION public.ledger_gate_guard_profiles();
CREATE TRIGGER ledger_rules_guard BEFORE INSERT OR UPDATE OR DELETE ON public.ledger_rules
    FOR EACH ROW EXECUTE FUNCTION public.ledger_gate_guard_tables();
CREATE TRIGGER ledger_rules_truncate_guard BEFORE TRUNCATE ON public.ledger_rules
    FOR EACH STATEMENT EXECUTE FUNCTION public.ledger_gate_guard_tables();
CREATE TRIGGER ledger_pin_evidence_guard BEFORE INSERT OR UPDATE OR DELETE ON public.ledger_pin_evidence
    FOR EACH ROW EXECUTE FUNCTION public.ledger_gate_guard_tables();
CREATE TRIGGER ledger_pin_evidence_truncate_guard BEFORE TRUNCATE ON public.ledger_pin_evidence
    FOR EACH STATEMENT EXECUTE FUNCTION public.ledger_gate_guard_tables();


-- ---------------------------------------------------------------------------------------------------------
-- The rule
-- ---------------------------------------------------------------------------------------------------------

-- Whether confirming a payment of p_type and p_amount by this user needs the PIN (the profile as locked by
-- the caller): above the threshold, or past the allowance (count reached, or total plus this payment over).
CREATE FUNCTION public.ledger_needs_pin(p_profile profiles, p_type TEXT, p_amount NUMERIC) RETURNS BOOLEAN
LANGUAGE sql STABLE SET search_path = public, pg_temp AS $$
    SELECT p_type <> 'bank_to_mpesa'
           AND (p_amount > r.pin_threshold
                OR p_profile.no_pin_count >= r.no_pin_count
                OR p_profile.no_pin_amount + p_amount > r.no_pin_amount)
    FROM ledger_rules r
$$;

-- Whether the user is locked out of payments at p_now.
CREATE FUNCTION public.ledger_pin_locked(p_profile profiles, p_now TIMESTAMPTZ) RETURNS BOOLEAN
LANGUAGE sql STABLE SET search_path = public, pg_temp AS $$
    SELECT p_profile.pin_locked_until IS NOT NULL AND p_profile.pin_locked_until > p_now
$$;

-- The gate of a proposal after its price (propose and revise, the profile locked; the lock was checked
-- first): refuses a payment that needs a PIN the user has not set; otherwise whether its confirmation will
-- need the PIN.
CREATE FUNCTION public.ledger_proposal_gate(p_profile profiles, p_type TEXT, p_amount NUMERIC) RETURNS BOOLEAN
LANGUAGE plpgsql STABLE SET search_path = public, pg_temp AS $$
DECLARE
    v_needs BOOLEAN := coalesce(ledger_needs_pin(p_profile, p_type, p_amount), false);
BEGIN
    IF v_needs AND p_profile.pin_hash IS NULL THEN
        PERFORM ledger_fail('pin_not_set', 'this payment needs a PIN, and none is set');
    END IF;
    RETURN v_needs;
END;
$$;

-- Takes the evidence of a correct PIN checked for this user in this database transaction, if any: true
-- once, then gone (one PIN confirms one payment).
CREATE FUNCTION public.ledger_take_pin_evidence(p_user_id UUID) RETURNS BOOLEAN
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
BEGIN
    DELETE FROM ledger_pin_evidence WHERE user_id = p_user_id AND xact = pg_current_xact_id();
    RETURN FOUND;
END;
$$;


-- ---------------------------------------------------------------------------------------------------------
-- PIN attempts (0015's lockout, its numbers now from ledger_rules), leaving the evidence of a correct one
-- ---------------------------------------------------------------------------------------------------------

DROP FUNCTION public.ledger_pin_attempt(UUID, BOOLEAN, TIMESTAMPTZ, INT, INT);

-- One PIN attempt, already checked against the hash by the caller (argon2 lives in Python): counts it and
-- answers 'ok', 'wrong' (with attempts left), 'locked' or 'not_set'. While locked, even a right PIN is
-- 'locked' and does not reset the count (no oracle). Wrong PINs are counted until a right one; once the
-- count has reached the maximum, each wrong PIN after a lock locks again, for twice as long as the lock
-- before (at most 2^10 times the first). A right PIN leaves the evidence ledger_confirm takes.
CREATE FUNCTION public.ledger_pin_attempt(p_user_id UUID, p_ok BOOLEAN, p_now TIMESTAMPTZ DEFAULT NULL)
    RETURNS TABLE (outcome TEXT, attempts_left INT, locked_until TIMESTAMPTZ)
    LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    v_now TIMESTAMPTZ := coalesce(p_now, now());
    v_profile profiles;
    v_rules ledger_rules;
    v_until TIMESTAMPTZ;
BEGIN
    SELECT * INTO v_profile FROM profiles WHERE id = p_user_id FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM ledger_fail('user_not_found', 'no such user');
    END IF;
    SELECT * INTO v_rules FROM ledger_rules;
    IF v_profile.pin_hash IS NULL THEN
        RETURN QUERY SELECT 'not_set'::TEXT, 0, NULL::TIMESTAMPTZ;
        RETURN;
    END IF;
    IF ledger_pin_locked(v_profile, v_now) THEN
        RETURN QUERY SELECT 'locked'::TEXT, 0, v_profile.pin_locked_until;
        RETURN;
    END IF;
    IF p_ok THEN
        UPDATE profiles SET pin_failed_attempts = 0, pin_locked_until = NULL WHERE id = p_user_id;
        INSERT INTO ledger_pin_evidence (user_id, xact) VALUES (p_user_id, pg_current_xact_id())
        ON CONFLICT (user_id) DO UPDATE SET xact = excluded.xact;
        RETURN QUERY SELECT 'ok'::TEXT, v_rules.pin_max_attempts, NULL::TIMESTAMPTZ;
        RETURN;
    END IF;
    DELETE FROM ledger_pin_evidence WHERE user_id = p_user_id;  -- a wrong PIN spoils a right one before it
    v_profile.pin_failed_attempts := v_profile.pin_failed_attempts + 1;
    IF v_profile.pin_failed_attempts >= v_rules.pin_max_attempts THEN
        v_until := v_now + make_interval(secs => v_rules.pin_lockout_seconds::DOUBLE PRECISION
                                                 * power(2, least(v_profile.pin_failed_attempts
                                                                  - v_rules.pin_max_attempts, 10)));
        UPDATE profiles SET pin_failed_attempts = v_profile.pin_failed_attempts, pin_locked_until = v_until
        WHERE id = p_user_id;
        RETURN QUERY SELECT 'locked'::TEXT, 0, v_until;
        RETURN;
    END IF;
    UPDATE profiles SET pin_failed_attempts = v_profile.pin_failed_attempts, pin_locked_until = NULL
    WHERE id = p_user_id;
    RETURN QUERY SELECT 'wrong'::TEXT, v_rules.pin_max_attempts - v_profile.pin_failed_attempts,
                        NULL::TIMESTAMPTZ;
END
$$;


-- ---------------------------------------------------------------------------------------------------------
-- Propose and revise (0003's, with the gate: a locked user and a missing PIN are refused before read-back,
-- and the row says whether its confirmation will need the PIN)
-- ---------------------------------------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION public.ledger_propose(
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
    v_needs_pin BOOLEAN;
    v_row transactions%ROWTYPE;
BEGIN
    SELECT * INTO v_profile FROM profiles WHERE id = p_user_id FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM ledger_fail('user_not_found', 'no such user');
    END IF;
    IF p_type IS DISTINCT FROM 'bank_to_mpesa' AND ledger_pin_locked(v_profile, v_now) THEN
        PERFORM ledger_fail('pin_locked', 'too many wrong PINs: payments are locked for now');
    END IF;
    SELECT * INTO v_price FROM ledger_price(v_profile, p_type, p_amount, p_phone, p_till, p_paybill, p_account,
                                            p_agent, p_store, p_bank_code, p_confidence_score, v_now, 0);
    v_needs_pin := ledger_proposal_gate(v_profile, p_type, p_amount);

    UPDATE profiles SET held_balance = held_balance + v_price.hold WHERE id = p_user_id;
    INSERT INTO transactions (user_id, type, amount, fee, hold_amount, phone, till, paybill, account, agent,
                              store, bank_code, status, confidence_score, voice_command_text, session_id,
                              version, expires_at, needs_pin)
    VALUES (p_user_id, p_type, p_amount, v_price.fee, v_price.hold, v_price.phone, coalesce(p_till, ''),
            coalesce(p_paybill, ''),
            coalesce(p_account, ''), coalesce(p_agent, ''), coalesce(p_store, ''), coalesce(p_bank_code, ''),
            'pending', p_confidence_score, p_voice_command_text, p_session_id,
            1, v_now + make_interval(secs => p_ttl_seconds), v_needs_pin)
    RETURNING * INTO v_row;
    RETURN v_row;
END;
$$;

CREATE OR REPLACE FUNCTION public.ledger_revise(
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
    v_needs_pin BOOLEAN;
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
    IF p_type IS DISTINCT FROM 'bank_to_mpesa' AND ledger_pin_locked(v_profile, v_now) THEN
        PERFORM ledger_fail('pin_locked', 'too many wrong PINs: payments are locked for now');
    END IF;
    SELECT * INTO v_price FROM ledger_price(v_profile, p_type, p_amount, p_phone, p_till, p_paybill, p_account,
                                            p_agent, p_store, p_bank_code, p_confidence_score, v_now,
                                            v_tx.hold_amount);
    v_needs_pin := ledger_proposal_gate(v_profile, p_type, p_amount);

    UPDATE profiles SET held_balance = held_balance - v_tx.hold_amount + v_price.hold WHERE id = p_user_id;
    UPDATE transactions
    SET type = p_type, amount = p_amount, fee = v_price.fee, hold_amount = v_price.hold, phone = v_price.phone,
        till = coalesce(p_till, ''), paybill = coalesce(p_paybill, ''), account = coalesce(p_account, ''),
        agent = coalesce(p_agent, ''), store = coalesce(p_store, ''), bank_code = coalesce(p_bank_code, ''),
        confidence_score = p_confidence_score,
        voice_command_text = coalesce(p_voice_command_text, voice_command_text),
        version = version + 1, expires_at = v_now + make_interval(secs => p_ttl_seconds),
        needs_pin = v_needs_pin
    WHERE id = p_transaction_id
    RETURNING * INTO v_tx;
    RETURN v_tx;
END;
$$;


-- ---------------------------------------------------------------------------------------------------------
-- Confirm (0008's, with the gate): whoever calls it, a locked user's payment is refused and voided
-- (`pin_locked`), a payment that needs the PIN without the evidence of a correct one in this database
-- transaction is refused and left pending (`pin_required`; or `pin_not_set`, voided, when the user has no
-- PIN), and the allowance is counted (or reset by a payment confirmed with the PIN) in the same commit.
-- ---------------------------------------------------------------------------------------------------------

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
    v_pin BOOLEAN;
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

    -- The gate, first the lock (a locked user's payment of any amount is refused) ...
    IF v_tx.type <> 'bank_to_mpesa' AND ledger_pin_locked(v_profile, v_now) THEN
        PERFORM ledger_void(v_tx, 'pin_locked');
        RETURN jsonb_build_object('error', 'pin_locked',
                                  'message', 'too many wrong PINs: payments are locked for now');
    END IF;
    SELECT * INTO v_terms FROM ledger_user_terms(p_user_id, v_now);
    v_refusal := ledger_limit_refusal(p_user_id, v_tx.amount, v_terms.monthly_limit, v_now);
    IF v_refusal IS NOT NULL THEN
        PERFORM ledger_void(v_tx, v_refusal);
        RETURN jsonb_build_object('error', v_refusal, 'message', ledger_limit_message(v_refusal));
    END IF;
    -- ... then the PIN (never asked for a payment a limit refuses anyway).
    v_pin := ledger_take_pin_evidence(p_user_id);
    IF v_tx.type <> 'bank_to_mpesa' AND NOT v_pin AND ledger_needs_pin(v_profile, v_tx.type, v_tx.amount) THEN
        IF v_profile.pin_hash IS NULL THEN
            PERFORM ledger_void(v_tx, 'pin_not_set');
            RETURN jsonb_build_object('error', 'pin_not_set',
                                      'message', 'this payment needs a PIN, and none is set');
        END IF;
        PERFORM ledger_fail('pin_required', 'this payment needs the PIN: finish it in the app');
    END IF;

    v_wallet := v_profile.wallet_balance;
    IF v_tx.type <> 'bank_to_mpesa' THEN
        PERFORM update_user_balance(p_user_id, v_tx.id, -v_tx.amount, 'debit', NULL, v_tx.hold_amount);
        v_wallet := update_user_balance(p_user_id, v_tx.id, -v_tx.fee, 'fee');
        IF v_pin THEN
            UPDATE profiles SET no_pin_count = 0, no_pin_amount = 0 WHERE id = p_user_id;
        ELSE
            UPDATE profiles SET no_pin_count = no_pin_count + 1, no_pin_amount = no_pin_amount + v_tx.amount
            WHERE id = p_user_id;
        END IF;
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
        'voice_verified', coalesce(p_voice_verified, false), 'pin_verified', v_pin,
        'wallet_balance', v_wallet::text,
        'available', (v_wallet - (v_profile.held_balance - v_tx.hold_amount))::text,
        'confirmed_at', v_now, 'auto_topup_id', v_topup_id);
    IF v_reference IS NOT NULL THEN
        v_result := v_result || jsonb_build_object('paybill', v_paybill, 'account_reference', v_reference,
                                                   'deposit_expires_at', v_now + interval '24 hours');
    END IF;
    UPDATE transactions
    SET status = 'processing', confirmed_at = v_now, voice_verified = coalesce(p_voice_verified, false),
        pin_verified = v_pin, confirm_result = v_result, external_ref = coalesce(v_reference, external_ref)
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


-- Server side only: no user role may call any of these, nor read or write the rules and the evidence.
DO $$
DECLARE
    f TEXT;
    r TEXT;
BEGIN
    FOREACH f IN ARRAY ARRAY[
        'public.ledger_gate_guard_profiles()',
        'public.ledger_gate_guard_tables()',
        'public.ledger_needs_pin(profiles, TEXT, NUMERIC)',
        'public.ledger_pin_locked(profiles, TIMESTAMPTZ)',
        'public.ledger_proposal_gate(profiles, TEXT, NUMERIC)',
        'public.ledger_take_pin_evidence(UUID)',
        'public.ledger_pin_attempt(UUID, BOOLEAN, TIMESTAMPTZ)']
    LOOP
        EXECUTE format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC', f);
        FOREACH r IN ARRAY ARRAY['authenticated', 'anon'] LOOP
            IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
                EXECUTE format('REVOKE EXECUTE ON FUNCTION %s FROM %I', f, r);
            END IF;
        END LOOP;
    END LOOP;
    EXECUTE 'REVOKE ALL ON public.ledger_rules, public.ledger_pin_evidence FROM PUBLIC';
    FOREACH r IN ARRAY ARRAY['authenticated', 'anon'] LOOP
        IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
            EXECUTE format('REVOKE ALL ON public.ledger_rules, public.ledger_pin_evidence FROM %I', r);
        END IF;
    END LOOP;
END
$$;
