-- public.ledger_guard_profile: its current definition, applied again whenever this file changes (edit it
-- here). Its history, in numbered files: 0020_doors.sql.

-- The one guard of a profile's columns: a role that does not own the table (a signed-in user, the anon key,
-- whatever a later GRANT gives them) may change only the preferences below. Everything else in the row is the
-- ledger's: the wallet and the holds, the PIN hash, its attempts and lock, the no-PIN allowance, the phone
-- number a user signs in with and the M-Pesa number their withdrawals are paid to (no app path changes
-- those), and any column added later. (0019/0027 kept part of this rule a second time, for the user roles
-- only: dropped/ledger_gate_guard_profiles.sql.) Inserts and deletes: `ledger_refuse_write`.

-- The profile columns a user may change; everything else in the row is the ledger's.
CREATE OR REPLACE FUNCTION public.ledger_guard_profile() RETURNS TRIGGER
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

REVOKE ALL ON FUNCTION public.ledger_guard_profile() FROM PUBLIC, anon, authenticated;

-- Where it runs.
CREATE OR REPLACE TRIGGER ledger_guard_columns BEFORE UPDATE ON public.profiles
    FOR EACH ROW EXECUTE FUNCTION public.ledger_guard_profile();
