-- The phone app's REST API (/v1/me, /v1/contacts, /v1/payment-methods, /v1/subscription, Stripe webhooks).
--
-- The app's reads and writes run as role `authenticated` with the user's JWT claims, so the founding policies
-- decide which rows a request can touch. The founding grants gave `authenticated` every column of contacts
-- and payment_methods; they are narrowed here to what a user may really write: never a contact's payment
-- totals (kept by the trigger below), never a row of someone else (the policies), never a money column.

-- CONTACTS ------------------------------------------------------------------------------------------------
REVOKE ALL ON public.contacts FROM authenticated;
GRANT SELECT, DELETE ON public.contacts TO authenticated;
GRANT INSERT (user_id, name, phone_number, nickname, relationship, default_amount, favorite)
    ON public.contacts TO authenticated;
GRANT UPDATE (name, phone_number, nickname, relationship, default_amount, favorite)
    ON public.contacts TO authenticated;

-- One contact per number per user: an address book imported twice does not double, and two requests at
-- once cannot both add the same number.
CREATE UNIQUE INDEX idx_contacts_user_phone ON public.contacts (user_id, phone_number);

-- What a user may store: a name that fits on a screen, a payable default amount, counters never negative.
ALTER TABLE public.contacts
    ADD CONSTRAINT contacts_app_fields_check CHECK (
        length(name) BETWEEN 1 AND 100
        AND (nickname IS NULL OR length(nickname) <= 100)
        AND (relationship IS NULL OR length(relationship) <= 50)
        AND (default_amount IS NULL OR (default_amount > 0 AND default_amount <= 250000))
        AND transaction_count >= 0 AND total_sent >= 0
    ) NOT VALID;

-- A payment to a saved number that completes counts towards that contact (the voice matcher ranks by it).
-- Runs as the ledger (the table owner) when ledger_settle stamps the transaction completed.
CREATE FUNCTION public.app_count_contact_payment() RETURNS TRIGGER
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
BEGIN
    IF NEW.status = 'completed' AND OLD.status IS DISTINCT FROM 'completed' AND coalesce(NEW.phone, '') <> ''
       AND NEW.type IN ('send_phone', 'buy_goods_pochi') THEN
        UPDATE contacts
        SET transaction_count = transaction_count + 1, total_sent = total_sent + NEW.amount
        WHERE user_id = NEW.user_id AND phone_number = NEW.phone;
    END IF;
    RETURN NULL;
END;
$$;
REVOKE EXECUTE ON FUNCTION public.app_count_contact_payment() FROM PUBLIC;

CREATE TRIGGER transactions_count_contact_payment
    AFTER UPDATE OF status ON public.transactions
    FOR EACH ROW EXECUTE FUNCTION public.app_count_contact_payment();

-- A contact saved (or renumbered) after payments to its number starts from those payments, so the totals
-- always equal the user's completed payments to the number, whenever it was saved. Runs as the inserting
-- user: the policies on transactions let it count only that user's own payments.
CREATE FUNCTION public.app_contact_totals() RETURNS TRIGGER
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
BEGIN
    IF TG_OP = 'INSERT' OR NEW.phone_number IS DISTINCT FROM OLD.phone_number THEN
        SELECT count(*), coalesce(sum(amount), 0) INTO NEW.transaction_count, NEW.total_sent
        FROM transactions
        WHERE user_id = NEW.user_id AND phone = NEW.phone_number AND status = 'completed'
          AND type IN ('send_phone', 'buy_goods_pochi');
    END IF;
    RETURN NEW;
END;
$$;
REVOKE EXECUTE ON FUNCTION public.app_contact_totals() FROM PUBLIC;

CREATE TRIGGER contacts_totals_from_payments
    BEFORE INSERT OR UPDATE OF phone_number ON public.contacts
    FOR EACH ROW EXECUTE FUNCTION public.app_contact_totals();
CREATE INDEX idx_transactions_user_phone_completed ON public.transactions (user_id, phone)
    WHERE status = 'completed';

-- PAYMENT METHODS -----------------------------------------------------------------------------------------
-- Cards are a provider token with last4 and brand only; the token itself is not readable back.
REVOKE ALL ON public.payment_methods FROM authenticated;
GRANT SELECT (id, user_id, method_type, card_last4, card_brand, mpesa_number, bank_name, bank_account_number,
              bank_code, is_default, is_active, created_at)
    ON public.payment_methods TO authenticated;
GRANT INSERT (user_id, method_type, card_last4, card_brand, card_token, mpesa_number, bank_name,
              bank_account_number, bank_code, is_default)
    ON public.payment_methods TO authenticated;
GRANT UPDATE (is_default) ON public.payment_methods TO authenticated;
GRANT DELETE ON public.payment_methods TO authenticated;

ALTER TABLE public.payment_methods
    ADD CONSTRAINT payment_methods_shape_check CHECK (
        CASE method_type
            WHEN 'card' THEN card_token IS NOT NULL AND card_last4 ~ '^[0-9]{4}$' AND card_brand IS NOT NULL
                             AND mpesa_number IS NULL AND bank_account_number IS NULL
            WHEN 'mpesa' THEN mpesa_number ~ '^254[17][0-9]{8}$' AND card_token IS NULL
                              AND bank_account_number IS NULL
            WHEN 'bank' THEN bank_code ~ '^[0-9]{2}$' AND bank_account_number ~ '^[A-Za-z0-9]{1,20}$'
                             AND card_token IS NULL AND mpesa_number IS NULL
        END
    ) NOT VALID;

-- One default at a time, and each method saved once.
CREATE UNIQUE INDEX idx_payment_methods_one_default ON public.payment_methods (user_id)
    WHERE is_default AND is_active;
CREATE UNIQUE INDEX idx_payment_methods_mpesa_once ON public.payment_methods (user_id, mpesa_number)
    WHERE method_type = 'mpesa' AND is_active;
CREATE UNIQUE INDEX idx_payment_methods_bank_once ON public.payment_methods (user_id, bank_code,
                                                                             bank_account_number)
    WHERE method_type = 'bank' AND is_active;
CREATE UNIQUE INDEX idx_payment_methods_card_once ON public.payment_methods (user_id, card_token)
    WHERE method_type = 'card' AND is_active;
CREATE INDEX idx_payment_methods_user ON public.payment_methods (user_id);

-- TRANSACTIONS: the app's history pages newest first by (created_at, id).
CREATE INDEX idx_transactions_user_created ON public.transactions (user_id, created_at DESC, id DESC);
CREATE INDEX idx_balance_history_user_seq ON public.balance_history (user_id, seq DESC);
CREATE INDEX idx_mpesa_transactions_user_created ON public.mpesa_transactions (user_id, created_at DESC);

-- SUBSCRIPTIONS: Stripe events may arrive out of order; the time of the last one applied keeps an older
-- event from undoing a newer one.
ALTER TABLE public.subscriptions ADD COLUMN stripe_event_at TIMESTAMPTZ;
CREATE INDEX idx_subscriptions_stripe_id ON public.subscriptions (stripe_subscription_id)
    WHERE stripe_subscription_id IS NOT NULL;

-- Stripe webhook events applied, by id: Stripe delivers at least once, so a replay changes nothing.
-- Server-side only: row level security on and no grant to users.
CREATE TABLE public.stripe_events (
    id TEXT PRIMARY KEY,
    type TEXT NOT NULL,
    outcome TEXT NOT NULL,
    received_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
ALTER TABLE public.stripe_events ENABLE ROW LEVEL SECURITY;
REVOKE ALL ON public.stripe_events FROM PUBLIC, authenticated;

-- Supabase grants its API roles every table by default: a request without a user token (role anon) has no
-- business with contacts, payment methods or Stripe events, even where the policies would show it nothing.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'anon') THEN
        EXECUTE 'REVOKE ALL ON public.contacts, public.payment_methods, public.stripe_events FROM anon';
    END IF;
END
$$;
