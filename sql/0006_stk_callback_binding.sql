-- STK callbacks that name their top-up (`.../stk/<mpesa_transactions.id>` in the push's CallBackURL) keep
-- that id with the raw callback, so a push whose answer was lost can still be matched and credited by
-- ledger_credit_stk (see 0003).

ALTER TABLE public.mpesa_callbacks ADD COLUMN topup_id UUID;
