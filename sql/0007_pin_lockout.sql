-- PIN attempts: five wrong PINs in a row lock PIN-guarded actions (voice payments above the threshold, a PIN
-- change) until `pin_locked_until`. The count lives on the profile so every server process and every channel
-- (voice, app) counts towards the same lockout, and it changes under the profile's row lock.
ALTER TABLE public.profiles
    ADD COLUMN pin_failed_attempts INT NOT NULL DEFAULT 0 CHECK (pin_failed_attempts >= 0),
    ADD COLUMN pin_locked_until TIMESTAMPTZ;

-- One PIN attempt, already checked against the hash by the caller (argon2 lives in Python): counts it and
-- answers 'ok', 'wrong' (with attempts left), 'locked' or 'not_set'. While locked, even a right PIN is
-- 'locked' and does not reset the count, so a locked account gives no oracle of the right PIN.
CREATE FUNCTION public.ledger_pin_attempt(p_user_id UUID, p_ok BOOLEAN, p_now TIMESTAMPTZ DEFAULT NULL,
                                          p_max_attempts INT DEFAULT 5, p_lock_seconds INT DEFAULT 3600)
    RETURNS TABLE (outcome TEXT, attempts_left INT, locked_until TIMESTAMPTZ)
    LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    v_now TIMESTAMPTZ := coalesce(p_now, now());
    v_profile profiles;
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
    IF v_profile.pin_locked_until IS NOT NULL THEN  -- a lock that has run out starts a fresh count
        v_profile.pin_failed_attempts := 0;
    END IF;
    IF p_ok THEN
        UPDATE profiles SET pin_failed_attempts = 0, pin_locked_until = NULL WHERE id = p_user_id;
        RETURN QUERY SELECT 'ok'::TEXT, p_max_attempts, NULL::TIMESTAMPTZ;
        RETURN;
    END IF;
    v_profile.pin_failed_attempts := v_profile.pin_failed_attempts + 1;
    IF v_profile.pin_failed_attempts >= p_max_attempts THEN
        UPDATE profiles SET pin_failed_attempts = v_profile.pin_failed_attempts,
                            pin_locked_until = v_now + make_interval(secs => p_lock_seconds)
        WHERE id = p_user_id;
        RETURN QUERY SELECT 'locked'::TEXT, 0, v_now + make_interval(secs => p_lock_seconds);
        RETURN;
    END IF;
    UPDATE profiles SET pin_failed_attempts = v_profile.pin_failed_attempts, pin_locked_until = NULL
    WHERE id = p_user_id;
    RETURN QUERY SELECT 'wrong'::TEXT, p_max_attempts - v_profile.pin_failed_attempts, NULL::TIMESTAMPTZ;
END
$$;

REVOKE EXECUTE ON FUNCTION public.ledger_pin_attempt(UUID, BOOLEAN, TIMESTAMPTZ, INT, INT) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION public.ledger_pin_attempt(UUID, BOOLEAN, TIMESTAMPTZ, INT, INT) FROM authenticated;
-- Users may see whether they are locked out (the app shows it), never change it.
GRANT SELECT (pin_failed_attempts, pin_locked_until) ON public.profiles TO authenticated;
