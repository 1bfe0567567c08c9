-- The earlier `transactions` table, as people created it before the founding schema's migration plan: no
-- error_message, retry_count or completed_at, and no checks (a type may be NULL, any amount, any status).
CREATE TABLE public.transactions (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id UUID NOT NULL,
    type TEXT,
    amount DECIMAL(12,2) NOT NULL,
    phone TEXT DEFAULT '',
    till TEXT DEFAULT '',
    paybill TEXT DEFAULT '',
    account TEXT DEFAULT '',
    agent TEXT DEFAULT '',
    store TEXT DEFAULT '',
    bank_code TEXT DEFAULT '',
    status TEXT DEFAULT 'pending',
    voice_verified BOOLEAN DEFAULT false,
    confidence_score INTEGER,
    voice_command_text TEXT,
    mpesa_transaction_id TEXT DEFAULT '',
    external_ref TEXT DEFAULT '',
    created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    updated_at TIMESTAMP WITH TIME ZONE DEFAULT NOW()
);
CREATE INDEX idx_transactions_user_id ON public.transactions(user_id);
