-- Two guards the founding schema lacks, found while building the M-Pesa path and the user-facing reads.
--
-- 1. M-Pesa moves whole shillings only (Daraja's Amount is an integer). A proposal of 99.50 that goes out
--    through Daraja could never be paid, so it is refused before it is read back. bank_to_mpesa, which
--    Daraja does not carry, keeps cents. The founding check stays as it was, renamed; the new function of the
--    old name calls it first, so ledger_propose and ledger_revise need no change.
--
-- 2. The Supabase-style user path (role `authenticated` with the founding policies) must never move money or
--    read secrets. The founding policies stay; the table privileges are narrowed so that a user token can
--    read its own rows but cannot write balances, transactions, history or top-ups, cannot read pin_hash,
--    and cannot call the ledger's functions directly (they would otherwise run with the caller's rights).

ALTER FUNCTION public.ledger_check_intent(TEXT, NUMERIC, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT)
    RENAME TO ledger_check_intent_fields;

CREATE FUNCTION public.ledger_check_intent(p_type TEXT, p_amount NUMERIC, p_phone TEXT, p_till TEXT,
    p_paybill TEXT, p_account TEXT, p_agent TEXT, p_store TEXT, p_bank_code TEXT) RETURNS VOID
LANGUAGE plpgsql IMMUTABLE SET search_path = public, pg_temp AS $$
BEGIN
    PERFORM ledger_check_intent_fields(p_type, p_amount, p_phone, p_till, p_paybill, p_account, p_agent,
                                       p_store, p_bank_code);
    IF p_type <> 'bank_to_mpesa' AND p_amount <> trunc(p_amount) THEN
        PERFORM ledger_fail('invalid_amount', 'M-Pesa moves whole shillings only');
    END IF;
END;
$$;

-- Profiles: read everything but the PIN hash (whether a PIN is set is its own column); change only one's own
-- preferences.
ALTER TABLE public.profiles ADD COLUMN pin_set BOOLEAN GENERATED ALWAYS AS (pin_hash IS NOT NULL) STORED;
REVOKE ALL ON public.profiles FROM authenticated;
GRANT SELECT (id, phone_number, mpesa_number, wallet_balance, held_balance, pin_set, mpesa_auto_topup,
              mpesa_auto_topup_threshold, mpesa_auto_topup_amount, card_auto_topup, default_payment_method,
              biometric_enabled, created_at, updated_at, last_login)
    ON public.profiles TO authenticated;
GRANT UPDATE (mpesa_auto_topup, mpesa_auto_topup_threshold, mpesa_auto_topup_amount, card_auto_topup,
              default_payment_method, biometric_enabled)
    ON public.profiles TO authenticated;

-- The preferences a user may change are kept to values the top-up can honour (an STK push is a whole
-- number of shillings, at most 250,000).
ALTER TABLE public.profiles
    ADD CONSTRAINT profiles_auto_topup_check CHECK (
        (mpesa_auto_topup_amount IS NULL OR (mpesa_auto_topup_amount > 0 AND mpesa_auto_topup_amount <= 250000
                                             AND mpesa_auto_topup_amount = trunc(mpesa_auto_topup_amount)))
        AND (mpesa_auto_topup_threshold IS NULL OR mpesa_auto_topup_threshold >= 0)
    );

-- Money tables are read-only for users: only the ledger (the server's own role) writes them.
REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON
    public.transactions, public.balance_history, public.mpesa_transactions, public.subscriptions
FROM authenticated;
REVOKE UPDATE, DELETE, TRUNCATE ON public.voice_sessions FROM authenticated;

-- No direct calls of the money functions from a user role (nor from PUBLIC, which every role is in).
DO $$
DECLARE
    f regprocedure;
BEGIN
    FOR f IN
        SELECT p.oid::regprocedure FROM pg_proc p
        WHERE p.pronamespace = 'public'::regnamespace
          AND (p.proname LIKE 'ledger\_%' OR p.proname = 'update_user_balance')
    LOOP
        EXECUTE format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC', f);
        EXECUTE format('REVOKE EXECUTE ON FUNCTION %s FROM authenticated', f);
    END LOOP;
END
$$;
