-- public.ledger_pin_locked: its current definition, applied again whenever this file changes (edit it here).
-- Its history, in numbered files: 0019_who_may_spend.sql.

-- Whether the user is locked out of payments at p_now.
CREATE OR REPLACE FUNCTION public.ledger_pin_locked(p_profile profiles, p_now TIMESTAMPTZ) RETURNS BOOLEAN
LANGUAGE sql STABLE SET search_path = public, pg_temp AS $$
    SELECT p_profile.pin_locked_until IS NOT NULL AND p_profile.pin_locked_until > p_now
$$;

REVOKE ALL ON FUNCTION public.ledger_pin_locked(profiles, timestamp with time zone) FROM PUBLIC, anon, authenticated;
