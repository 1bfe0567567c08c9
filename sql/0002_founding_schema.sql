-- The founding schema of Ongea Pesa: tables, checks, indexes, row level security, update_user_balance and
-- triggers, with the founding names unchanged. Adapted so it applies to plain PostgreSQL as well as Supabase:
-- * `uuid-ossp`/`pgcrypto` are created only where the server ships them; ids default to the built-in
--   gen_random_uuid(), the same version-4 UUIDs that uuid_generate_v4() makes.
-- * the `supabase_realtime` publication is used only where it exists.
-- * `authenticated` is granted table privileges explicitly (Supabase grants them by default; row level
--   security still decides which rows a user sees).

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'uuid-ossp') THEN
        CREATE EXTENSION IF NOT EXISTS "uuid-ossp";
    END IF;
    IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pgcrypto') THEN
        CREATE EXTENSION IF NOT EXISTS "pgcrypto";
    END IF;
END
$$;

-- 1. PROFILES (extends auth.users)
CREATE TABLE public.profiles (
    id UUID REFERENCES auth.users(id) ON DELETE CASCADE PRIMARY KEY,
    phone_number TEXT UNIQUE NOT NULL,
    mpesa_number TEXT,

    wallet_balance DECIMAL(12,2) DEFAULT 0.00 CHECK (wallet_balance >= 0),

    mpesa_auto_topup BOOLEAN DEFAULT false,
    mpesa_auto_topup_threshold DECIMAL(10,2) DEFAULT 100.00,
    mpesa_auto_topup_amount DECIMAL(10,2) DEFAULT 500.00,
    card_auto_topup BOOLEAN DEFAULT false,
    default_payment_method TEXT DEFAULT 'wallet' CHECK (default_payment_method IN ('wallet', 'mpesa', 'card')),

    pin_hash TEXT,
    biometric_enabled BOOLEAN DEFAULT false,

    created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    updated_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    last_login TIMESTAMP WITH TIME ZONE
);

-- 2. TRANSACTIONS
CREATE TABLE public.transactions (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id UUID REFERENCES auth.users(id) ON DELETE CASCADE NOT NULL,

    type TEXT NOT NULL CHECK (type IN (
        'send_phone',
        'buy_goods_pochi',
        'buy_goods_till',
        'paybill',
        'withdraw',
        'bank_to_mpesa',
        'mpesa_to_bank'
    )),
    amount DECIMAL(12,2) NOT NULL CHECK (amount > 0 AND amount <= 999999),

    -- Recipient fields (empty strings when not used)
    phone TEXT DEFAULT '',
    till TEXT DEFAULT '',
    paybill TEXT DEFAULT '',
    account TEXT DEFAULT '',
    agent TEXT DEFAULT '',
    store TEXT DEFAULT '',
    bank_code TEXT DEFAULT '',

    status TEXT DEFAULT 'pending' CHECK (status IN (
        'pending',
        'processing',
        'completed',
        'failed',
        'cancelled'
    )),
    voice_verified BOOLEAN DEFAULT false,
    confidence_score INTEGER CHECK (confidence_score >= 0 AND confidence_score <= 100),
    voice_command_text TEXT,

    mpesa_transaction_id TEXT DEFAULT '',
    external_ref TEXT DEFAULT '',

    error_message TEXT,
    retry_count INTEGER DEFAULT 0,

    created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    updated_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    completed_at TIMESTAMP WITH TIME ZONE
);

-- 3. VOICE SESSIONS
CREATE TABLE public.voice_sessions (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id UUID REFERENCES auth.users(id) ON DELETE CASCADE NOT NULL,
    session_id TEXT UNIQUE NOT NULL,
    agent_id TEXT NOT NULL,
    signed_url TEXT,

    status TEXT DEFAULT 'active' CHECK (status IN ('active', 'expired', 'ended')),

    created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    expires_at TIMESTAMP WITH TIME ZONE DEFAULT (NOW() + INTERVAL '15 minutes'),
    ended_at TIMESTAMP WITH TIME ZONE
);

-- 4. BALANCE HISTORY (audit trail)
CREATE TABLE public.balance_history (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id UUID REFERENCES auth.users(id) ON DELETE CASCADE NOT NULL,
    transaction_id UUID REFERENCES public.transactions(id) ON DELETE SET NULL,

    previous_balance DECIMAL(12,2) NOT NULL,
    new_balance DECIMAL(12,2) NOT NULL,
    change_amount DECIMAL(12,2) NOT NULL,
    reason TEXT NOT NULL,

    created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW()
);

-- 5. MPESA TRANSACTIONS (top-ups)
CREATE TABLE public.mpesa_transactions (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id UUID REFERENCES auth.users(id) ON DELETE CASCADE NOT NULL,

    checkout_request_id TEXT UNIQUE,
    merchant_request_id TEXT,
    amount DECIMAL(10,2) NOT NULL,
    phone_number TEXT NOT NULL,
    mpesa_receipt_number TEXT,

    status TEXT DEFAULT 'pending' CHECK (status IN ('pending', 'completed', 'failed')),
    error_message TEXT,

    created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    completed_at TIMESTAMP WITH TIME ZONE
);

-- 6. SAVED PAYMENT METHODS
CREATE TABLE public.payment_methods (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id UUID REFERENCES auth.users(id) ON DELETE CASCADE NOT NULL,

    method_type TEXT NOT NULL CHECK (method_type IN ('card', 'mpesa', 'bank')),

    card_last4 TEXT,
    card_brand TEXT,
    card_token TEXT,

    mpesa_number TEXT,

    bank_name TEXT,
    bank_account_number TEXT,
    bank_code TEXT,

    is_default BOOLEAN DEFAULT false,
    is_active BOOLEAN DEFAULT true,

    created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW()
);

-- 7. CONTACTS (frequent recipients)
CREATE TABLE public.contacts (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id UUID REFERENCES auth.users(id) ON DELETE CASCADE NOT NULL,

    name TEXT NOT NULL,
    phone_number TEXT,
    nickname TEXT,
    relationship TEXT,

    default_amount DECIMAL(10,2),
    favorite BOOLEAN DEFAULT false,

    transaction_count INTEGER DEFAULT 0,
    total_sent DECIMAL(12,2) DEFAULT 0,

    created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    updated_at TIMESTAMP WITH TIME ZONE DEFAULT NOW()
);

-- 8. SUBSCRIPTIONS (revenue model)
CREATE TABLE public.subscriptions (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id UUID REFERENCES auth.users(id) ON DELETE CASCADE NOT NULL,

    plan_type TEXT NOT NULL CHECK (plan_type IN ('free', 'basic', 'pro', 'business')),
    status TEXT DEFAULT 'active' CHECK (status IN ('active', 'cancelled', 'expired', 'past_due')),

    monthly_fee DECIMAL(10,2) NOT NULL,
    transaction_fee_percentage DECIMAL(5,4) NOT NULL,  -- e.g. 0.0100 = 1%
    monthly_transaction_limit INTEGER,                 -- NULL = unlimited

    stripe_subscription_id TEXT,
    stripe_customer_id TEXT,

    current_period_start TIMESTAMP WITH TIME ZONE NOT NULL,
    current_period_end TIMESTAMP WITH TIME ZONE NOT NULL,
    cancel_at TIMESTAMP WITH TIME ZONE,

    created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    updated_at TIMESTAMP WITH TIME ZONE DEFAULT NOW()
);

-- INDEXES
CREATE INDEX idx_transactions_user_id ON public.transactions(user_id);
CREATE INDEX idx_transactions_status ON public.transactions(status);
CREATE INDEX idx_transactions_type ON public.transactions(type);
CREATE INDEX idx_transactions_created_at ON public.transactions(created_at DESC);
CREATE INDEX idx_transactions_user_status ON public.transactions(user_id, status);

CREATE INDEX idx_voice_sessions_user_id ON public.voice_sessions(user_id);
CREATE INDEX idx_voice_sessions_status ON public.voice_sessions(status);
CREATE INDEX idx_voice_sessions_expires_at ON public.voice_sessions(expires_at);

CREATE INDEX idx_balance_history_user_id ON public.balance_history(user_id);
CREATE INDEX idx_balance_history_created_at ON public.balance_history(created_at DESC);

CREATE INDEX idx_mpesa_transactions_user_id ON public.mpesa_transactions(user_id);
CREATE INDEX idx_mpesa_transactions_status ON public.mpesa_transactions(status);
CREATE INDEX idx_mpesa_checkout_request ON public.mpesa_transactions(checkout_request_id);

CREATE INDEX idx_contacts_user_id ON public.contacts(user_id);
CREATE INDEX idx_contacts_phone ON public.contacts(phone_number);
CREATE INDEX idx_contacts_favorite ON public.contacts(user_id, favorite) WHERE favorite = true;

CREATE INDEX idx_subscriptions_user_id ON public.subscriptions(user_id);
CREATE INDEX idx_subscriptions_status ON public.subscriptions(status);

-- ROW LEVEL SECURITY
ALTER TABLE public.profiles ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.transactions ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.voice_sessions ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.balance_history ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.mpesa_transactions ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.payment_methods ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.contacts ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.subscriptions ENABLE ROW LEVEL SECURITY;

CREATE POLICY "Users can view own profile" ON public.profiles FOR SELECT USING (auth.uid() = id);
CREATE POLICY "Users can update own profile" ON public.profiles FOR UPDATE USING (auth.uid() = id);
CREATE POLICY "Users can view own transactions" ON public.transactions FOR SELECT USING (auth.uid() = user_id);
CREATE POLICY "Users can insert own transactions" ON public.transactions FOR INSERT WITH CHECK (auth.uid() = user_id);
CREATE POLICY "Users can view own sessions" ON public.voice_sessions FOR SELECT USING (auth.uid() = user_id);
CREATE POLICY "Users can create own sessions" ON public.voice_sessions FOR INSERT WITH CHECK (auth.uid() = user_id);
CREATE POLICY "Users can view own balance history" ON public.balance_history FOR SELECT USING (auth.uid() = user_id);
CREATE POLICY "Users can view own mpesa transactions" ON public.mpesa_transactions FOR SELECT USING (auth.uid() = user_id);
CREATE POLICY "Users can manage own payment methods" ON public.payment_methods FOR ALL USING (auth.uid() = user_id);
CREATE POLICY "Users can manage own contacts" ON public.contacts FOR ALL USING (auth.uid() = user_id);
CREATE POLICY "Users can view own subscription" ON public.subscriptions FOR SELECT USING (auth.uid() = user_id);

GRANT USAGE ON SCHEMA public TO authenticated;
GRANT SELECT, INSERT, UPDATE, DELETE ON
    public.profiles, public.transactions, public.voice_sessions, public.balance_history,
    public.mpesa_transactions, public.payment_methods, public.contacts, public.subscriptions
TO authenticated;

-- FUNCTIONS
-- Every balance change goes through this function: it locks the profile row, refuses a negative balance,
-- and writes the balance_history row in the same transaction.
CREATE OR REPLACE FUNCTION public.update_user_balance(
    p_user_id UUID,
    p_transaction_id UUID,
    p_change_amount DECIMAL(12,2),
    p_reason TEXT
) RETURNS VOID AS $$
DECLARE
    v_current_balance DECIMAL(12,2);
    v_new_balance DECIMAL(12,2);
BEGIN
    SELECT wallet_balance INTO v_current_balance
    FROM public.profiles
    WHERE id = p_user_id
    FOR UPDATE;

    v_new_balance := v_current_balance + p_change_amount;

    IF v_new_balance < 0 THEN
        RAISE EXCEPTION 'Insufficient balance';
    END IF;

    UPDATE public.profiles
    SET wallet_balance = v_new_balance,
        updated_at = NOW()
    WHERE id = p_user_id;

    INSERT INTO public.balance_history (
        user_id, transaction_id, previous_balance,
        new_balance, change_amount, reason
    ) VALUES (
        p_user_id, p_transaction_id, v_current_balance,
        v_new_balance, p_change_amount, p_reason
    );
END;
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION public.update_updated_at_column()
RETURNS TRIGGER AS $$
BEGIN
    NEW.updated_at = NOW();
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER update_profiles_updated_at
    BEFORE UPDATE ON public.profiles
    FOR EACH ROW EXECUTE FUNCTION public.update_updated_at_column();

CREATE TRIGGER update_transactions_updated_at
    BEFORE UPDATE ON public.transactions
    FOR EACH ROW EXECUTE FUNCTION public.update_updated_at_column();

CREATE TRIGGER update_contacts_updated_at
    BEFORE UPDATE ON public.contacts
    FOR EACH ROW EXECUTE FUNCTION public.update_updated_at_column();

CREATE TRIGGER update_subscriptions_updated_at
    BEFORE UPDATE ON public.subscriptions
    FOR EACH ROW EXECUTE FUNCTION public.update_updated_at_column();

-- REALTIME (Supabase only)
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_publication WHERE pubname = 'supabase_realtime') THEN
        ALTER PUBLICATION supabase_realtime ADD TABLE public.profiles;
        ALTER PUBLICATION supabase_realtime ADD TABLE public.transactions;
        ALTER PUBLICATION supabase_realtime ADD TABLE public.balance_history;
        ALTER PUBLICATION supabase_realtime ADD TABLE public.mpesa_transactions;
    END IF;
END
$$;

-- SUBSCRIPTION PLANS (seed)
CREATE TABLE public.subscription_plans (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    monthly_fee DECIMAL(10,2) NOT NULL,
    transaction_fee_percentage DECIMAL(5,4) NOT NULL,
    monthly_transaction_limit INTEGER,
    features JSONB
);

INSERT INTO public.subscription_plans
    (id, name, monthly_fee, transaction_fee_percentage, monthly_transaction_limit, features)
VALUES
    ('free', 'Free Plan', 0, 0.020, 5,
     '{"transactions_per_month": 5, "support": "community", "priority": "low"}'::jsonb),
    ('basic', 'Basic Plan', 99, 0.010, 50,
     '{"transactions_per_month": 50, "support": "email", "priority": "normal", "voice_receipts": true}'::jsonb),
    ('pro', 'Pro Plan', 499, 0.005, NULL,
     '{"transactions_per_month": "unlimited", "support": "priority", "priority": "high", "analytics": true, "api_access": true}'::jsonb),
    ('business', 'Business Plan', 1999, 0.003, NULL,
     '{"transactions_per_month": "unlimited", "support": "dedicated", "priority": "highest", "multi_user": true, "white_label": true, "api_access": true}'::jsonb)
ON CONFLICT (id) DO NOTHING;

GRANT SELECT ON public.subscription_plans TO authenticated;
