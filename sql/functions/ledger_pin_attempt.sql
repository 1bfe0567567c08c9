-- public.ledger_pin_attempt: its current definition, applied again whenever this file changes (edit it here).
-- Its history, in numbered files: 0007_pin_lockout.sql, 0015_attack_fixes.sql (dropped in
-- 0019_who_may_spend.sql), 0019_who_may_spend.sql.

-- One PIN attempt, already checked against the hash by the caller (argon2 lives in Python): counts it and
-- answers 'ok', 'wrong' (with attempts left), 'locked' or 'not_set'. While locked, even a right PIN is
-- 'locked' and does not reset the count (no oracle). Wrong PINs are counted until a right one; once the
-- count has reached the maximum, each wrong PIN after a lock locks again, for twice as long as the lock
-- before (at most 2^10 times the first). A right PIN leaves the evidence ledger_confirm takes.
CREATE OR REPLACE FUNCTION public.ledger_pin_attempt(p_user_id UUID, p_ok BOOLEAN, p_now TIMESTAMPTZ DEFAULT NULL)
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

REVOKE ALL ON FUNCTION public.ledger_pin_attempt(uuid, boolean, timestamp with time zone) FROM PUBLIC, anon, authenticated;
