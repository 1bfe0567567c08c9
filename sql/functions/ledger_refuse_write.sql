-- public.ledger_refuse_write: its current definition, applied again whenever this file changes (edit it
-- here). Its history, in numbered files: 0020_doors.sql.

-- The one guard of the server's tables: no role but their owner (the ledger's) writes or truncates them,
-- whatever it was granted. (0019 kept it a second time for `ledger_rules` and `ledger_pin_evidence`, for the
-- user roles only: dropped/ledger_gate_guard_tables.sql.)
CREATE OR REPLACE FUNCTION public.ledger_refuse_write() RETURNS TRIGGER
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

REVOKE ALL ON FUNCTION public.ledger_refuse_write() FROM PUBLIC, anon, authenticated;

-- Where it runs: on every table that existed when 0020 put it there (schema_migrations included), written out
-- here one by one. Tables created since have none unless added below.
CREATE OR REPLACE TRIGGER ledger_guard_truncate BEFORE TRUNCATE ON public.balance_history
    FOR EACH STATEMENT EXECUTE FUNCTION public.ledger_refuse_write();
CREATE OR REPLACE TRIGGER ledger_guard_writes BEFORE INSERT OR DELETE OR UPDATE ON public.balance_history
    FOR EACH STATEMENT EXECUTE FUNCTION public.ledger_refuse_write();
CREATE OR REPLACE TRIGGER ledger_guard_truncate BEFORE TRUNCATE ON public.c2b_deposits
    FOR EACH STATEMENT EXECUTE FUNCTION public.ledger_refuse_write();
CREATE OR REPLACE TRIGGER ledger_guard_writes BEFORE INSERT OR DELETE OR UPDATE ON public.c2b_deposits
    FOR EACH STATEMENT EXECUTE FUNCTION public.ledger_refuse_write();
CREATE OR REPLACE TRIGGER ledger_guard_truncate BEFORE TRUNCATE ON public.c2b_expected_deposits
    FOR EACH STATEMENT EXECUTE FUNCTION public.ledger_refuse_write();
CREATE OR REPLACE TRIGGER ledger_guard_writes BEFORE INSERT OR DELETE OR UPDATE ON public.c2b_expected_deposits
    FOR EACH STATEMENT EXECUTE FUNCTION public.ledger_refuse_write();
CREATE OR REPLACE TRIGGER ledger_guard_truncate BEFORE TRUNCATE ON public.c2b_paybill
    FOR EACH STATEMENT EXECUTE FUNCTION public.ledger_refuse_write();
CREATE OR REPLACE TRIGGER ledger_guard_writes BEFORE INSERT OR DELETE OR UPDATE ON public.c2b_paybill
    FOR EACH STATEMENT EXECUTE FUNCTION public.ledger_refuse_write();
CREATE OR REPLACE TRIGGER ledger_guard_truncate BEFORE TRUNCATE ON public.contacts
    FOR EACH STATEMENT EXECUTE FUNCTION public.ledger_refuse_write();
CREATE OR REPLACE TRIGGER ledger_guard_truncate BEFORE TRUNCATE ON public.daraja_tokens
    FOR EACH STATEMENT EXECUTE FUNCTION public.ledger_refuse_write();
CREATE OR REPLACE TRIGGER ledger_guard_writes BEFORE INSERT OR DELETE OR UPDATE ON public.daraja_tokens
    FOR EACH STATEMENT EXECUTE FUNCTION public.ledger_refuse_write();
CREATE OR REPLACE TRIGGER ledger_guard_truncate BEFORE TRUNCATE ON public.ledger_pin_evidence
    FOR EACH STATEMENT EXECUTE FUNCTION public.ledger_refuse_write();
CREATE OR REPLACE TRIGGER ledger_guard_writes BEFORE INSERT OR DELETE OR UPDATE ON public.ledger_pin_evidence
    FOR EACH STATEMENT EXECUTE FUNCTION public.ledger_refuse_write();
CREATE OR REPLACE TRIGGER ledger_guard_truncate BEFORE TRUNCATE ON public.ledger_rules
    FOR EACH STATEMENT EXECUTE FUNCTION public.ledger_refuse_write();
CREATE OR REPLACE TRIGGER ledger_guard_writes BEFORE INSERT OR DELETE OR UPDATE ON public.ledger_rules
    FOR EACH STATEMENT EXECUTE FUNCTION public.ledger_refuse_write();
CREATE OR REPLACE TRIGGER ledger_guard_truncate BEFORE TRUNCATE ON public.ledger_usage
    FOR EACH STATEMENT EXECUTE FUNCTION public.ledger_refuse_write();
CREATE OR REPLACE TRIGGER ledger_guard_writes BEFORE INSERT OR DELETE OR UPDATE ON public.ledger_usage
    FOR EACH STATEMENT EXECUTE FUNCTION public.ledger_refuse_write();
CREATE OR REPLACE TRIGGER ledger_guard_truncate BEFORE TRUNCATE ON public.mpesa_callbacks
    FOR EACH STATEMENT EXECUTE FUNCTION public.ledger_refuse_write();
CREATE OR REPLACE TRIGGER ledger_guard_writes BEFORE INSERT OR DELETE OR UPDATE ON public.mpesa_callbacks
    FOR EACH STATEMENT EXECUTE FUNCTION public.ledger_refuse_write();
CREATE OR REPLACE TRIGGER ledger_guard_truncate BEFORE TRUNCATE ON public.mpesa_status_queries
    FOR EACH STATEMENT EXECUTE FUNCTION public.ledger_refuse_write();
CREATE OR REPLACE TRIGGER ledger_guard_writes BEFORE INSERT OR DELETE OR UPDATE ON public.mpesa_status_queries
    FOR EACH STATEMENT EXECUTE FUNCTION public.ledger_refuse_write();
CREATE OR REPLACE TRIGGER ledger_guard_truncate BEFORE TRUNCATE ON public.mpesa_stk_alternates
    FOR EACH STATEMENT EXECUTE FUNCTION public.ledger_refuse_write();
CREATE OR REPLACE TRIGGER ledger_guard_writes BEFORE INSERT OR DELETE OR UPDATE ON public.mpesa_stk_alternates
    FOR EACH STATEMENT EXECUTE FUNCTION public.ledger_refuse_write();
CREATE OR REPLACE TRIGGER ledger_guard_truncate BEFORE TRUNCATE ON public.mpesa_stk_queries
    FOR EACH STATEMENT EXECUTE FUNCTION public.ledger_refuse_write();
CREATE OR REPLACE TRIGGER ledger_guard_writes BEFORE INSERT OR DELETE OR UPDATE ON public.mpesa_stk_queries
    FOR EACH STATEMENT EXECUTE FUNCTION public.ledger_refuse_write();
CREATE OR REPLACE TRIGGER ledger_guard_truncate BEFORE TRUNCATE ON public.mpesa_transactions
    FOR EACH STATEMENT EXECUTE FUNCTION public.ledger_refuse_write();
CREATE OR REPLACE TRIGGER ledger_guard_writes BEFORE INSERT OR DELETE OR UPDATE ON public.mpesa_transactions
    FOR EACH STATEMENT EXECUTE FUNCTION public.ledger_refuse_write();
CREATE OR REPLACE TRIGGER ledger_guard_truncate BEFORE TRUNCATE ON public.payment_methods
    FOR EACH STATEMENT EXECUTE FUNCTION public.ledger_refuse_write();
CREATE OR REPLACE TRIGGER ledger_guard_truncate BEFORE TRUNCATE ON public.payout_outbox
    FOR EACH STATEMENT EXECUTE FUNCTION public.ledger_refuse_write();
CREATE OR REPLACE TRIGGER ledger_guard_writes BEFORE INSERT OR DELETE OR UPDATE ON public.payout_outbox
    FOR EACH STATEMENT EXECUTE FUNCTION public.ledger_refuse_write();
CREATE OR REPLACE TRIGGER ledger_guard_insert_delete BEFORE INSERT OR DELETE ON public.profiles
    FOR EACH STATEMENT EXECUTE FUNCTION public.ledger_refuse_write();
CREATE OR REPLACE TRIGGER ledger_guard_truncate BEFORE TRUNCATE ON public.profiles
    FOR EACH STATEMENT EXECUTE FUNCTION public.ledger_refuse_write();
CREATE OR REPLACE TRIGGER ledger_guard_truncate BEFORE TRUNCATE ON public.schema_migrations
    FOR EACH STATEMENT EXECUTE FUNCTION public.ledger_refuse_write();
CREATE OR REPLACE TRIGGER ledger_guard_writes BEFORE INSERT OR DELETE OR UPDATE ON public.schema_migrations
    FOR EACH STATEMENT EXECUTE FUNCTION public.ledger_refuse_write();
CREATE OR REPLACE TRIGGER ledger_guard_truncate BEFORE TRUNCATE ON public.stripe_events
    FOR EACH STATEMENT EXECUTE FUNCTION public.ledger_refuse_write();
CREATE OR REPLACE TRIGGER ledger_guard_writes BEFORE INSERT OR DELETE OR UPDATE ON public.stripe_events
    FOR EACH STATEMENT EXECUTE FUNCTION public.ledger_refuse_write();
CREATE OR REPLACE TRIGGER ledger_guard_truncate BEFORE TRUNCATE ON public.subscription_plans
    FOR EACH STATEMENT EXECUTE FUNCTION public.ledger_refuse_write();
CREATE OR REPLACE TRIGGER ledger_guard_writes BEFORE INSERT OR DELETE OR UPDATE ON public.subscription_plans
    FOR EACH STATEMENT EXECUTE FUNCTION public.ledger_refuse_write();
CREATE OR REPLACE TRIGGER ledger_guard_truncate BEFORE TRUNCATE ON public.subscriptions
    FOR EACH STATEMENT EXECUTE FUNCTION public.ledger_refuse_write();
CREATE OR REPLACE TRIGGER ledger_guard_writes BEFORE INSERT OR DELETE OR UPDATE ON public.subscriptions
    FOR EACH STATEMENT EXECUTE FUNCTION public.ledger_refuse_write();
CREATE OR REPLACE TRIGGER ledger_guard_truncate BEFORE TRUNCATE ON public.transactions
    FOR EACH STATEMENT EXECUTE FUNCTION public.ledger_refuse_write();
CREATE OR REPLACE TRIGGER ledger_guard_writes BEFORE INSERT OR DELETE OR UPDATE ON public.transactions
    FOR EACH STATEMENT EXECUTE FUNCTION public.ledger_refuse_write();
CREATE OR REPLACE TRIGGER ledger_guard_truncate BEFORE TRUNCATE ON public.voice_session_transcripts
    FOR EACH STATEMENT EXECUTE FUNCTION public.ledger_refuse_write();
CREATE OR REPLACE TRIGGER ledger_guard_writes BEFORE INSERT OR DELETE OR UPDATE ON public.voice_session_transcripts
    FOR EACH STATEMENT EXECUTE FUNCTION public.ledger_refuse_write();
CREATE OR REPLACE TRIGGER ledger_guard_truncate BEFORE TRUNCATE ON public.voice_sessions
    FOR EACH STATEMENT EXECUTE FUNCTION public.ledger_refuse_write();
CREATE OR REPLACE TRIGGER ledger_guard_writes BEFORE INSERT OR DELETE OR UPDATE ON public.voice_sessions
    FOR EACH STATEMENT EXECUTE FUNCTION public.ledger_refuse_write();

-- The tables of business accounts (0028_business.sql).
CREATE OR REPLACE TRIGGER ledger_guard_truncate BEFORE TRUNCATE ON public.businesses
    FOR EACH STATEMENT EXECUTE FUNCTION public.ledger_refuse_write();
CREATE OR REPLACE TRIGGER ledger_guard_writes BEFORE INSERT OR DELETE OR UPDATE ON public.businesses
    FOR EACH STATEMENT EXECUTE FUNCTION public.ledger_refuse_write();
CREATE OR REPLACE TRIGGER ledger_guard_truncate BEFORE TRUNCATE ON public.business_members
    FOR EACH STATEMENT EXECUTE FUNCTION public.ledger_refuse_write();
CREATE OR REPLACE TRIGGER ledger_guard_writes BEFORE INSERT OR DELETE OR UPDATE ON public.business_members
    FOR EACH STATEMENT EXECUTE FUNCTION public.ledger_refuse_write();

-- The tables of API access (0026_api_keys.sql; 0036_api_key_holes.sql): after a blanket GRANT ALL a user
-- truncated the idempotency keys and the audit log (tests/attack_api/test_holes.py).
CREATE OR REPLACE TRIGGER ledger_guard_truncate BEFORE TRUNCATE ON public.api_keys
    FOR EACH STATEMENT EXECUTE FUNCTION public.ledger_refuse_write();
CREATE OR REPLACE TRIGGER ledger_guard_writes BEFORE INSERT OR DELETE OR UPDATE ON public.api_keys
    FOR EACH STATEMENT EXECUTE FUNCTION public.ledger_refuse_write();
CREATE OR REPLACE TRIGGER ledger_guard_truncate BEFORE TRUNCATE ON public.api_key_events
    FOR EACH STATEMENT EXECUTE FUNCTION public.ledger_refuse_write();
CREATE OR REPLACE TRIGGER ledger_guard_writes BEFORE INSERT OR DELETE OR UPDATE ON public.api_key_events
    FOR EACH STATEMENT EXECUTE FUNCTION public.ledger_refuse_write();
CREATE OR REPLACE TRIGGER ledger_guard_truncate BEFORE TRUNCATE ON public.trusted_payees
    FOR EACH STATEMENT EXECUTE FUNCTION public.ledger_refuse_write();
CREATE OR REPLACE TRIGGER ledger_guard_writes BEFORE INSERT OR DELETE OR UPDATE ON public.trusted_payees
    FOR EACH STATEMENT EXECUTE FUNCTION public.ledger_refuse_write();
CREATE OR REPLACE TRIGGER ledger_guard_truncate BEFORE TRUNCATE ON public.idempotency_keys
    FOR EACH STATEMENT EXECUTE FUNCTION public.ledger_refuse_write();
CREATE OR REPLACE TRIGGER ledger_guard_writes BEFORE INSERT OR DELETE OR UPDATE ON public.idempotency_keys
    FOR EACH STATEMENT EXECUTE FUNCTION public.ledger_refuse_write();
