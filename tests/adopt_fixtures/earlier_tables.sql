-- More of the earlier founding tables, without the checks the founding schema added.
CREATE TABLE public.profiles (
    id UUID PRIMARY KEY,
    phone_number TEXT UNIQUE NOT NULL,
    mpesa_number TEXT,
    wallet_balance DECIMAL(12,2) DEFAULT 0.00,
    pin_hash TEXT,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    updated_at TIMESTAMP WITH TIME ZONE DEFAULT NOW()
);
CREATE TABLE public.voice_sessions (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id UUID NOT NULL,
    session_id TEXT UNIQUE NOT NULL,
    agent_id TEXT NOT NULL,
    status TEXT DEFAULT 'active',
    created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW()
);
CREATE TABLE public.contacts (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id UUID NOT NULL,
    name TEXT NOT NULL,
    phone_number TEXT,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW()
);
CREATE TABLE public.mpesa_transactions (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id UUID NOT NULL,
    checkout_request_id TEXT UNIQUE,
    merchant_request_id TEXT,
    amount DECIMAL(10,2) NOT NULL,
    phone_number TEXT NOT NULL,
    mpesa_receipt_number TEXT,
    status TEXT DEFAULT 'pending',
    error_message TEXT,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    completed_at TIMESTAMP WITH TIME ZONE
);
CREATE TABLE public.balance_history (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id UUID NOT NULL,
    transaction_id UUID REFERENCES public.transactions(id) ON DELETE SET NULL,
    previous_balance DECIMAL(12,2) NOT NULL,
    new_balance DECIMAL(12,2) NOT NULL,
    change_amount DECIMAL(12,2) NOT NULL,
    reason TEXT NOT NULL,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW()
);
-- The founding document seeded the plans; this earlier database also added one of its own.
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
    ('free', 'Free Plan', 0, 0.020, 5, '{"transactions_per_month": 5}'::jsonb),
    ('basic', 'Basic Plan', 99, 0.010, 50, '{"transactions_per_month": 50}'::jsonb),
    ('pro', 'Pro Plan', 499, 0.005, NULL, '{"transactions_per_month": "unlimited"}'::jsonb),
    ('business', 'Business Plan', 1999, 0.003, NULL, '{"transactions_per_month": "unlimited"}'::jsonb),
    ('family', 'Family Plan', 199, 0.008, 100, '{"members": 4}'::jsonb);
