-- What the plans sell (issue 22): spoken receipts, spending answers and the app's live feed.
--
-- * `plan_features(user)`: what the user's plan gives, decided here and nowhere else;
-- * `payout_receipts`: each settled payout's receipt, and whether (and where) the person was told;
-- * `app_events`: every change to a user's profile, transactions, balance history and top-ups, written by
--   triggers (so any process's change is seen) and announced with NOTIFY `app_events`; a stream reads them
--   in the order (xid, id) below the horizon, which is the order in which they became final;
-- * `spending`: the payments that count as spending, read under the caller's row level security.

-- ---------------------------------------------------------------------------------------------------------
-- Plans: "Basic and up" speak receipts, "Pro and up" answer spending questions. The seed of 0002 wrote the
-- features of each plan by itself (Pro lacks voice_receipts, Business lacks both): the higher plans get
-- what the lower ones have, so each plan's `features` says everything it gives.
-- ---------------------------------------------------------------------------------------------------------
UPDATE public.subscription_plans
SET features = coalesce(features, '{}'::jsonb) || '{"voice_receipts": true}'::jsonb
WHERE id IN ('basic', 'pro', 'business') AND NOT coalesce(features ? 'voice_receipts', false);
UPDATE public.subscription_plans
SET features = coalesce(features, '{}'::jsonb) || '{"analytics": true}'::jsonb
WHERE id IN ('pro', 'business') AND NOT coalesce(features ? 'analytics', false);

-- The user's plan now (as ledger_user_terms picks it: the active subscription covering p_now, the latest
-- started first, else 'free') and the features it gives. The server asks it for the token's user; users
-- cannot call it (their reads of the spending view are the only grant this file makes).
CREATE FUNCTION public.plan_features(p_user_id UUID, p_now TIMESTAMPTZ DEFAULT now())
RETURNS TABLE (plan TEXT, voice_receipts BOOLEAN, analytics BOOLEAN)
LANGUAGE sql STABLE SET search_path = public, pg_temp AS $$
    SELECT p.id,
           coalesce(p.features -> 'voice_receipts' = 'true'::jsonb, false),
           coalesce(p.features -> 'analytics' = 'true'::jsonb, false)
    FROM subscription_plans p
    WHERE p.id = coalesce((SELECT s.plan_type FROM subscriptions s
                           WHERE s.user_id = p_user_id AND s.status = 'active'
                             AND p_now >= s.current_period_start AND p_now < s.current_period_end
                           ORDER BY s.current_period_start DESC
                           LIMIT 1), 'free')
$$;
REVOKE EXECUTE ON FUNCTION public.plan_features(UUID, TIMESTAMPTZ) FROM PUBLIC;

-- ---------------------------------------------------------------------------------------------------------
-- Receipts: a payout that settles (processing -> completed or failed) has one receipt to tell.
-- ---------------------------------------------------------------------------------------------------------
CREATE TABLE public.payout_receipts (
    transaction_id UUID PRIMARY KEY REFERENCES public.transactions(id) ON DELETE CASCADE,
    user_id UUID NOT NULL REFERENCES auth.users(id) ON DELETE CASCADE,
    status TEXT NOT NULL CHECK (status IN ('completed', 'failed')),
    settled_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    told_at TIMESTAMPTZ,
    told_in TEXT  -- the voice session it was told in
);
CREATE INDEX idx_payout_receipts_untold ON public.payout_receipts (user_id, settled_at) WHERE told_at IS NULL;
ALTER TABLE public.payout_receipts ENABLE ROW LEVEL SECURITY;
REVOKE ALL ON public.payout_receipts FROM PUBLIC;
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'anon') THEN
        EXECUTE 'REVOKE ALL ON public.payout_receipts FROM anon';
    END IF;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'authenticated') THEN
        EXECUTE 'REVOKE ALL ON public.payout_receipts FROM authenticated';
    END IF;
END
$$;

CREATE FUNCTION public.payout_receipt_due() RETURNS TRIGGER
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    INSERT INTO payout_receipts (transaction_id, user_id, status)
    VALUES (NEW.id, NEW.user_id, NEW.status)
    ON CONFLICT (transaction_id) DO NOTHING;
    RETURN NULL;
END;
$$;
REVOKE EXECUTE ON FUNCTION public.payout_receipt_due() FROM PUBLIC;

CREATE TRIGGER payout_receipt_due
    AFTER UPDATE OF status ON public.transactions
    FOR EACH ROW
    WHEN (OLD.status = 'processing' AND NEW.status IN ('completed', 'failed') AND NEW.type <> 'bank_to_mpesa')
    EXECUTE FUNCTION public.payout_receipt_due();

-- ---------------------------------------------------------------------------------------------------------
-- The live feed.
-- ---------------------------------------------------------------------------------------------------------
-- `xid` is the writing transaction's id: a reader takes the rows whose transaction is below the oldest one
-- of this database still in progress (so every transaction that could still add a row before them has
-- ended) in (xid, id) order; a row that commits later has a higher xid than any row already read, so a
-- cursor (xid, id) never skips one (voice_server/events_feed.py).
CREATE TABLE public.app_events (
    id BIGSERIAL PRIMARY KEY,
    xid XID8 NOT NULL DEFAULT pg_current_xact_id(),
    user_id UUID NOT NULL,
    source TEXT NOT NULL CHECK (source IN ('profiles', 'transactions', 'balance_history', 'mpesa_transactions')),
    op TEXT NOT NULL CHECK (op IN ('INSERT', 'UPDATE', 'DELETE')),
    row_id UUID NOT NULL,
    data JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX idx_app_events_position ON public.app_events (xid, id);
CREATE INDEX idx_app_events_user_position ON public.app_events (user_id, xid, id);
CREATE INDEX idx_app_events_created ON public.app_events (created_at);
ALTER TABLE public.app_events ENABLE ROW LEVEL SECURITY;
REVOKE ALL ON public.app_events FROM PUBLIC;
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'anon') THEN
        EXECUTE 'REVOKE ALL ON public.app_events FROM anon';
        EXECUTE 'REVOKE ALL ON SEQUENCE public.app_events_id_seq FROM anon';
    END IF;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'authenticated') THEN
        EXECUTE 'REVOKE ALL ON public.app_events FROM authenticated';
        EXECUTE 'REVOKE ALL ON SEQUENCE public.app_events_id_seq FROM authenticated';
    END IF;
END
$$;

-- What the app shows of each row (never a PIN hash, a lock counter or another user's field).
CREATE FUNCTION public.app_event_capture() RETURNS TRIGGER
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    v_user UUID;
    v_row UUID;
    v_data JSONB;
BEGIN
    IF TG_TABLE_NAME = 'profiles' THEN
        IF TG_OP = 'DELETE' THEN
            v_user := OLD.id; v_row := OLD.id; v_data := jsonb_build_object('id', OLD.id);
        ELSE
            v_user := NEW.id; v_row := NEW.id;
            v_data := jsonb_build_object(
                'id', NEW.id, 'wallet_balance', NEW.wallet_balance,
                'mpesa_auto_topup', NEW.mpesa_auto_topup,
                'mpesa_auto_topup_threshold', NEW.mpesa_auto_topup_threshold,
                'mpesa_auto_topup_amount', NEW.mpesa_auto_topup_amount, 'updated_at', NEW.updated_at);
        END IF;
    ELSIF TG_TABLE_NAME = 'transactions' THEN
        IF TG_OP = 'DELETE' THEN
            v_user := OLD.user_id; v_row := OLD.id; v_data := jsonb_build_object('id', OLD.id);
        ELSE
            v_user := NEW.user_id; v_row := NEW.id;
            v_data := jsonb_build_object(
                'id', NEW.id, 'type', NEW.type, 'status', NEW.status, 'amount', NEW.amount, 'fee', NEW.fee,
                'phone', NEW.phone, 'till', NEW.till, 'paybill', NEW.paybill, 'account', NEW.account,
                'agent', NEW.agent, 'store', NEW.store, 'bank_code', NEW.bank_code,
                'reference', coalesce(NEW.mpesa_transaction_id, ''), 'error_message', NEW.error_message,
                'created_at', NEW.created_at, 'confirmed_at', NEW.confirmed_at,
                'completed_at', NEW.completed_at);
        END IF;
    ELSIF TG_TABLE_NAME = 'balance_history' THEN
        IF TG_OP = 'DELETE' THEN
            v_user := OLD.user_id; v_row := OLD.id; v_data := jsonb_build_object('id', OLD.id);
        ELSE
            v_user := NEW.user_id; v_row := NEW.id;
            v_data := jsonb_build_object(
                'id', NEW.id, 'transaction_id', NEW.transaction_id, 'previous_balance', NEW.previous_balance,
                'new_balance', NEW.new_balance, 'change_amount', NEW.change_amount, 'reason', NEW.reason,
                'created_at', NEW.created_at);
        END IF;
    ELSE  -- mpesa_transactions (top-ups)
        IF TG_OP = 'DELETE' THEN
            v_user := OLD.user_id; v_row := OLD.id; v_data := jsonb_build_object('id', OLD.id);
        ELSE
            v_user := NEW.user_id; v_row := NEW.id;
            v_data := jsonb_build_object(
                'id', NEW.id, 'amount', NEW.amount, 'status', NEW.status,
                'reference', coalesce(NEW.mpesa_receipt_number, ''), 'error_message', NEW.error_message,
                'created_at', NEW.created_at, 'completed_at', NEW.completed_at);
        END IF;
    END IF;
    INSERT INTO app_events (user_id, source, op, row_id, data)
    VALUES (v_user, TG_TABLE_NAME, TG_OP, v_row, v_data);
    PERFORM pg_notify('app_events', '');  -- one notification per transaction (equal payloads fold)
    RETURN NULL;
END;
$$;
REVOKE EXECUTE ON FUNCTION public.app_event_capture() FROM PUBLIC;

-- A profile's PIN attempts and logins are not the app's to show: only the shown fields make an event.
CREATE TRIGGER app_events_profiles
    AFTER UPDATE ON public.profiles
    FOR EACH ROW
    WHEN (OLD.wallet_balance IS DISTINCT FROM NEW.wallet_balance
          OR OLD.mpesa_auto_topup IS DISTINCT FROM NEW.mpesa_auto_topup
          OR OLD.mpesa_auto_topup_threshold IS DISTINCT FROM NEW.mpesa_auto_topup_threshold
          OR OLD.mpesa_auto_topup_amount IS DISTINCT FROM NEW.mpesa_auto_topup_amount)
    EXECUTE FUNCTION public.app_event_capture();
CREATE TRIGGER app_events_profiles_insert
    AFTER INSERT OR DELETE ON public.profiles
    FOR EACH ROW EXECUTE FUNCTION public.app_event_capture();
CREATE TRIGGER app_events_transactions
    AFTER INSERT OR UPDATE OR DELETE ON public.transactions
    FOR EACH ROW EXECUTE FUNCTION public.app_event_capture();
CREATE TRIGGER app_events_balance_history
    AFTER INSERT OR UPDATE OR DELETE ON public.balance_history
    FOR EACH ROW EXECUTE FUNCTION public.app_event_capture();
CREATE TRIGGER app_events_mpesa_transactions
    AFTER INSERT OR UPDATE OR DELETE ON public.mpesa_transactions
    FOR EACH ROW EXECUTE FUNCTION public.app_event_capture();

-- Retention: events older than p_keep go; the highest position removed is kept, and a stream resumed from
-- an id below it is told to reload (it may have missed what was removed).
CREATE TABLE public.app_events_pruned (
    only_row BOOLEAN PRIMARY KEY DEFAULT true CHECK (only_row),
    xid XID8 NOT NULL,
    id BIGINT NOT NULL
);
ALTER TABLE public.app_events_pruned ENABLE ROW LEVEL SECURITY;
REVOKE ALL ON public.app_events_pruned FROM PUBLIC;
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'anon') THEN
        EXECUTE 'REVOKE ALL ON public.app_events_pruned FROM anon';
    END IF;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'authenticated') THEN
        EXECUTE 'REVOKE ALL ON public.app_events_pruned FROM authenticated';
    END IF;
END
$$;

CREATE FUNCTION public.app_events_prune(p_keep INTERVAL, p_limit INT DEFAULT 10000) RETURNS INT
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    v_count INT;
    v_xid XID8;
    v_id BIGINT;
BEGIN
    WITH gone AS (
        DELETE FROM app_events WHERE id IN (
            SELECT id FROM app_events WHERE created_at < now() - p_keep ORDER BY created_at LIMIT p_limit)
        RETURNING xid, id)
    SELECT count(*), (SELECT g.xid FROM gone g ORDER BY g.xid DESC, g.id DESC LIMIT 1),
           (SELECT g.id FROM gone g ORDER BY g.xid DESC, g.id DESC LIMIT 1)
    INTO v_count, v_xid, v_id FROM gone;
    IF v_count > 0 THEN
        INSERT INTO app_events_pruned (xid, id) VALUES (v_xid, v_id)
        ON CONFLICT (only_row) DO UPDATE SET xid = EXCLUDED.xid, id = EXCLUDED.id
        WHERE (app_events_pruned.xid, app_events_pruned.id) < (EXCLUDED.xid, EXCLUDED.id);
    END IF;
    RETURN v_count;
END;
$$;
REVOKE EXECUTE ON FUNCTION public.app_events_prune(INTERVAL, INT) FROM PUBLIC;

-- ---------------------------------------------------------------------------------------------------------
-- Spending: the payments that reached processing and did not fail. Refunds (a failed payout), top-ups
-- (mpesa_transactions) and bank_to_mpesa (money in) are not spending. Security invoker: under a user's
-- row level security it holds only their rows.
-- ---------------------------------------------------------------------------------------------------------
CREATE VIEW public.spending WITH (security_invoker = true) AS
SELECT t.id, t.user_id, t.type, t.amount, t.fee, t.confirmed_at AS spent_at,
       (t.confirmed_at AT TIME ZONE 'Africa/Nairobi')::date AS nairobi_day,
       t.phone, t.till, t.paybill, t.account, t.agent, t.store, t.bank_code,
       CASE t.type
           WHEN 'send_phone' THEN 'phone:' || t.phone
           WHEN 'buy_goods_pochi' THEN 'phone:' || t.phone
           WHEN 'buy_goods_till' THEN 'till:' || t.till
           WHEN 'paybill' THEN 'paybill:' || t.paybill
           WHEN 'withdraw' THEN 'agent:' || t.agent
           ELSE 'bank:' || t.bank_code
       END AS recipient
FROM public.transactions t
WHERE t.status IN ('processing', 'completed') AND t.type <> 'bank_to_mpesa' AND t.confirmed_at IS NOT NULL;
REVOKE ALL ON public.spending FROM PUBLIC;
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'anon') THEN
        EXECUTE 'REVOKE ALL ON public.spending FROM anon';
    END IF;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'authenticated') THEN
        EXECUTE 'REVOKE ALL ON public.spending FROM authenticated';
        EXECUTE 'GRANT SELECT ON public.spending TO authenticated';
    END IF;
END
$$;

-- The instants a period covers, in Africa/Nairobi time (weeks start on Monday), and the period before it.
CREATE FUNCTION public.spending_period(p_period TEXT, p_now TIMESTAMPTZ DEFAULT now(),
    OUT starts TIMESTAMPTZ, OUT ends TIMESTAMPTZ, OUT prev_starts TIMESTAMPTZ)
LANGUAGE plpgsql STABLE SET search_path = public, pg_temp AS $$
DECLARE
    v_local TIMESTAMP := p_now AT TIME ZONE 'Africa/Nairobi';
    v_start TIMESTAMP;
    v_unit INTERVAL;
BEGIN
    CASE p_period
        WHEN 'today' THEN v_start := date_trunc('day', v_local); v_unit := '1 day';
        WHEN 'yesterday' THEN v_start := date_trunc('day', v_local) - interval '1 day'; v_unit := '1 day';
        WHEN 'this_week' THEN v_start := date_trunc('week', v_local); v_unit := '1 week';
        WHEN 'last_week' THEN v_start := date_trunc('week', v_local) - interval '1 week'; v_unit := '1 week';
        WHEN 'this_month' THEN v_start := date_trunc('month', v_local); v_unit := '1 month';
        WHEN 'last_month' THEN v_start := date_trunc('month', v_local) - interval '1 month'; v_unit := '1 month';
        WHEN 'this_year' THEN v_start := date_trunc('year', v_local); v_unit := '1 year';
        ELSE RAISE EXCEPTION 'unknown period %', p_period USING ERRCODE = 'invalid_parameter_value';
    END CASE;
    starts := v_start AT TIME ZONE 'Africa/Nairobi';
    ends := (v_start + v_unit) AT TIME ZONE 'Africa/Nairobi';
    prev_starts := (v_start - v_unit) AT TIME ZONE 'Africa/Nairobi';
END;
$$;
REVOKE EXECUTE ON FUNCTION public.spending_period(TEXT, TIMESTAMPTZ) FROM PUBLIC;
