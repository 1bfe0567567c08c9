-- Holes found by attacking the app API and the schema as Supabase grants it (tests/attack/).
--
-- (Supabase's default grants, which let users and the anon key rewrite subscription_plans, TRUNCATE the
-- ledger's tables and setval its sequences, were taken back by 0008; tests/attack/test_supabase_grants.py
-- keeps them taken back.)

-- 1. Card numbers: the API refuses a request carrying one, but a user writing payment_methods through
--    PostgREST passes no API check, and card_token, card_brand and bank_name took any text (a card number
--    as the "token", in the brand, or in the bank name of an M-Pesa method). A token is a provider's token
--    (the API's own pattern), a brand is one of the API's, the fields of other method types stay empty, and
--    no free-text field holds a run of 12 or more digits.
ALTER TABLE public.payment_methods
    ADD CONSTRAINT payment_methods_no_card_number_check CHECK (
        (card_token IS NULL OR (card_token ~ '^[A-Za-z][A-Za-z0-9_-]{5,254}$'
                                AND card_token !~ '[0-9]([^0-9A-Za-z]?[0-9]){11,}'))
        AND (card_brand IS NULL OR card_brand IN ('visa', 'mastercard', 'amex', 'discover', 'diners', 'jcb',
                                                  'unionpay', 'unknown'))
        AND (bank_name IS NULL OR bank_name !~ '[0-9]([^0-9A-Za-z]?[0-9]){11,}')
        AND (method_type = 'card' OR (card_token IS NULL AND card_last4 IS NULL AND card_brand IS NULL))
        AND (method_type = 'bank' OR bank_name IS NULL)
    ) NOT VALID;

-- 2. PIN lockout: a lock that had run out started a fresh count, so a guesser who waited out each lock got
--    five guesses an hour (120 a day: every 4-digit PIN within three months). The count of wrong PINs is
--    now kept until a right one; once it has reached the maximum, each wrong PIN after a lock locks again
--    at once, for twice as long as the lock before (at most 2^10 times the first). A right PIN after the
--    lock has run out still resets everything; while locked even a right PIN is 'locked' (no oracle).
CREATE OR REPLACE FUNCTION public.ledger_pin_attempt(p_user_id UUID, p_ok BOOLEAN, p_now TIMESTAMPTZ DEFAULT NULL,
                                                     p_max_attempts INT DEFAULT 5, p_lock_seconds INT DEFAULT 3600)
    RETURNS TABLE (outcome TEXT, attempts_left INT, locked_until TIMESTAMPTZ)
    LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    v_now TIMESTAMPTZ := coalesce(p_now, now());
    v_profile profiles;
    v_until TIMESTAMPTZ;
BEGIN
    SELECT * INTO v_profile FROM profiles WHERE id = p_user_id FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM ledger_fail('user_not_found', 'no such user');
    END IF;
    IF v_profile.pin_hash IS NULL THEN
        RETURN QUERY SELECT 'not_set'::TEXT, 0, NULL::TIMESTAMPTZ;
        RETURN;
    END IF;
    IF v_profile.pin_locked_until IS NOT NULL AND v_profile.pin_locked_until > v_now THEN
        RETURN QUERY SELECT 'locked'::TEXT, 0, v_profile.pin_locked_until;
        RETURN;
    END IF;
    IF p_ok THEN
        UPDATE profiles SET pin_failed_attempts = 0, pin_locked_until = NULL WHERE id = p_user_id;
        RETURN QUERY SELECT 'ok'::TEXT, p_max_attempts, NULL::TIMESTAMPTZ;
        RETURN;
    END IF;
    v_profile.pin_failed_attempts := v_profile.pin_failed_attempts + 1;
    IF v_profile.pin_failed_attempts >= p_max_attempts THEN
        v_until := v_now + make_interval(secs => p_lock_seconds::DOUBLE PRECISION
                                                 * power(2, least(v_profile.pin_failed_attempts - p_max_attempts, 10)));
        UPDATE profiles SET pin_failed_attempts = v_profile.pin_failed_attempts, pin_locked_until = v_until
        WHERE id = p_user_id;
        RETURN QUERY SELECT 'locked'::TEXT, 0, v_until;
        RETURN;
    END IF;
    UPDATE profiles SET pin_failed_attempts = v_profile.pin_failed_attempts, pin_locked_until = NULL
    WHERE id = p_user_id;
    RETURN QUERY SELECT 'wrong'::TEXT, p_max_attempts - v_profile.pin_failed_attempts, NULL::TIMESTAMPTZ;
END
$$;
