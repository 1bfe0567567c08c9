-- The conversation server's doors under abuse (issue 18).
--
-- 1. One live WebSocket per voice session, on every process: each connection of a session takes the next
--    number here (under the session row's lock), and a process closes any socket of a session whose number
--    is no longer the newest (the newest connection wins, wherever it landed).
ALTER TABLE public.voice_sessions ADD COLUMN ws_generation BIGINT NOT NULL DEFAULT 0;

-- 2. Grants that a later mistake cannot reopen. A blanket `GRANT ALL ON ALL TABLES IN SCHEMA public TO
--    authenticated` (a common Supabase habit) run after migrating gave users UPDATE on their own profile row
--    (the founding policy "Users can update own profile"), so on their wallet_balance, INSERT on their own
--    transactions, TRUNCATE on every table (row level security has no say over TRUNCATE), and every write
--    on subscription_plans (no row level security there). Grants decide nothing below: triggers that no
--    grant bypasses refuse every write of the money and server tables by any role that is not the owner of
--    the table (the role that migrated, which the server and the ledger's functions run as) nor a member
--    of it. The ledger's functions run with their caller's rights, so the same functions called by a user
--    (had a grant given them EXECUTE) are refused at their first write.
--    - profiles: a user may change only the preference columns granted in 0008 (mpesa_auto_topup,
--      mpesa_auto_topup_threshold, mpesa_auto_topup_amount, card_auto_topup, default_payment_method,
--      biometric_enabled); balances, the PIN hash, attempts and lock, phone numbers and any column added
--      later change only as the owner. No insert or delete by users.
--    - contacts and payment_methods stay the user's to write (their policies confine it to their rows).
--    - every other table: no INSERT, UPDATE or DELETE by users; no table may be truncated by them.
--    - subscription_plans: row level security on, read by everyone, written by no policy.

CREATE FUNCTION public.ledger_refuse_write() RETURNS TRIGGER
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
BEGIN
    -- (Built-ins only: a trigger runs as the user, who may execute none of our functions.)
    IF NOT pg_has_role(current_user, (SELECT relowner FROM pg_class WHERE oid = TG_RELID), 'MEMBER') THEN
        RAISE EXCEPTION USING
            ERRCODE = 'insufficient_privilege',
            MESSAGE = format('%s may not %s %s: only the ledger writes it', current_user, lower(TG_OP),
                             TG_TABLE_NAME);
    END IF;
    RETURN NULL;  -- (statement-level BEFORE trigger: the value is ignored)
END;
$$;

-- The profile columns a user may change; everything else in the row is the ledger's.
CREATE FUNCTION public.ledger_guard_profile() RETURNS TRIGGER
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    v_theirs CONSTANT TEXT[] := ARRAY['mpesa_auto_topup', 'mpesa_auto_topup_threshold',
        'mpesa_auto_topup_amount', 'card_auto_topup', 'default_payment_method', 'biometric_enabled',
        'updated_at', 'pin_set'];
BEGIN
    IF pg_has_role(current_user, (SELECT relowner FROM pg_class WHERE oid = TG_RELID), 'MEMBER') THEN
        RETURN NEW;
    END IF;
    IF (to_jsonb(NEW) - v_theirs) IS DISTINCT FROM (to_jsonb(OLD) - v_theirs) THEN
        RAISE EXCEPTION USING
            ERRCODE = 'insufficient_privilege',
            MESSAGE = format('%s may change only the preferences of a profile', current_user);
    END IF;
    RETURN NEW;
END;
$$;

REVOKE ALL ON FUNCTION public.ledger_refuse_write() FROM PUBLIC;
REVOKE ALL ON FUNCTION public.ledger_guard_profile() FROM PUBLIC;
DO $$
DECLARE
    r RECORD;
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'anon') THEN
        EXECUTE 'REVOKE ALL ON FUNCTION public.ledger_refuse_write() FROM anon';
        EXECUTE 'REVOKE ALL ON FUNCTION public.ledger_guard_profile() FROM anon';
    END IF;
    EXECUTE 'REVOKE ALL ON FUNCTION public.ledger_refuse_write() FROM authenticated';
    EXECUTE 'REVOKE ALL ON FUNCTION public.ledger_guard_profile() FROM authenticated';
    FOR r IN
        SELECT c.oid::regclass AS tbl, c.relname FROM pg_class c
        WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p')
          AND NOT EXISTS (SELECT 1 FROM pg_depend d
                          WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
    LOOP
        EXECUTE format('CREATE TRIGGER ledger_guard_truncate BEFORE TRUNCATE ON %s '
                       'FOR EACH STATEMENT EXECUTE FUNCTION public.ledger_refuse_write()', r.tbl);
        IF r.relname = 'profiles' THEN
            EXECUTE format('CREATE TRIGGER ledger_guard_insert_delete BEFORE INSERT OR DELETE ON %s '
                           'FOR EACH STATEMENT EXECUTE FUNCTION public.ledger_refuse_write()', r.tbl);
            EXECUTE format('CREATE TRIGGER ledger_guard_columns BEFORE UPDATE ON %s '
                           'FOR EACH ROW EXECUTE FUNCTION public.ledger_guard_profile()', r.tbl);
        ELSIF r.relname NOT IN ('contacts', 'payment_methods') THEN
            EXECUTE format('CREATE TRIGGER ledger_guard_writes BEFORE INSERT OR UPDATE OR DELETE ON %s '
                           'FOR EACH STATEMENT EXECUTE FUNCTION public.ledger_refuse_write()', r.tbl);
        END IF;
    END LOOP;
END
$$;

ALTER TABLE public.subscription_plans ENABLE ROW LEVEL SECURITY;
CREATE POLICY "Plans are read by everyone" ON public.subscription_plans FOR SELECT USING (true);
