-- Holes found by attacking the app API and the schema as Supabase grants it (tests/attack/).
--
-- 1. Supabase grants its API roles (anon, authenticated) ALL on every table, function and sequence created
--    in `public`; the earlier migrations took back only some. Left as they were on Supabase:
--    * subscription_plans (no row level security): any user, and any request with the app's public anon
--      key, could PATCH it through PostgREST and set every plan's fee and monthly fee to 0;
--    * TRUNCATE, which row level security does not govern: ledger_usage (the monthly and daily limits),
--      payout_outbox, mpesa_callbacks, mpesa_status_queries; for anon every founding table;
--    * sequences (setval on balance_history.seq, the order of the audit chain and of history pages);
--    * EXECUTE on the ledger's functions for anon.
--    Users keep exactly what 0002-0011 granted them by name; anon keeps nothing (the app signs in first).
DO $$
DECLARE
    r TEXT;
BEGIN
    FOREACH r IN ARRAY ARRAY['anon', 'authenticated'] LOOP
        IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
            EXECUTE format('REVOKE ALL ON public.subscription_plans, public.payout_outbox, public.ledger_usage,'
                           ' public.mpesa_callbacks, public.mpesa_status_queries, public.stripe_events FROM %I', r);
            EXECUTE format('REVOKE TRUNCATE, REFERENCES, TRIGGER ON ALL TABLES IN SCHEMA public FROM %I', r);
            EXECUTE format('REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM %I', r);
            EXECUTE format('REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA public FROM %I', r);
            -- What later migrations create is not handed out either: each grants what it means by name.
            EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE ALL ON TABLES FROM %I', r);
            EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE ALL ON SEQUENCES FROM %I', r);
            EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE ALL ON FUNCTIONS FROM %I', r);
        END IF;
    END LOOP;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'anon') THEN
        EXECUTE 'REVOKE ALL ON ALL TABLES IN SCHEMA public FROM anon';
    END IF;
END
$$;
GRANT SELECT ON public.subscription_plans TO authenticated;
