-- public.ledger_check_intent_fields: its current definition, applied again whenever this file changes (edit
-- it here). Its history, in numbered files: 0003_ledger.sql, 0005_harden_user_access.sql (renamed from
-- ledger_check_intent).

-- Refuses an intent that is not a well-formed payment of its type (codes as the intent parser's).
CREATE OR REPLACE FUNCTION public.ledger_check_intent_fields(p_type TEXT, p_amount NUMERIC, p_phone TEXT, p_till TEXT,
    p_paybill TEXT, p_account TEXT, p_agent TEXT, p_store TEXT, p_bank_code TEXT) RETURNS VOID
LANGUAGE plpgsql IMMUTABLE SET search_path = public, pg_temp AS $$
BEGIN
    IF p_type IS NULL OR p_type NOT IN ('send_phone', 'buy_goods_pochi', 'buy_goods_till', 'paybill',
                                        'withdraw', 'bank_to_mpesa', 'mpesa_to_bank') THEN
        PERFORM ledger_fail('invalid_type', 'unknown transaction type');
    END IF;
    IF p_amount IS NULL OR p_amount <= 0 THEN
        PERFORM ledger_fail('amount_not_positive', 'the amount must be more than zero');
    END IF;
    IF p_amount <> round(p_amount, 2) THEN
        PERFORM ledger_fail('invalid_amount', 'amounts have at most two decimal places');
    END IF;
    IF p_amount > ${max_transaction_kes} THEN
        PERFORM ledger_fail('amount_above_limit', 'one transaction may be at most KES ${max_transaction_kes_text}');
    END IF;
    IF p_type IN ('send_phone', 'buy_goods_pochi') AND coalesce(p_phone, '') !~ '^254[17][0-9]{8}$' THEN
        PERFORM ledger_fail('invalid_phone', 'a Kenyan mobile number 2547XXXXXXXX or 2541XXXXXXXX is needed');
    END IF;
    IF p_type = 'buy_goods_till' AND coalesce(p_till, '') !~ '^[0-9]{5,7}$' THEN
        PERFORM ledger_fail('invalid_recipient', 'a till number of 5 to 7 digits is needed');
    END IF;
    IF p_type = 'paybill' AND coalesce(p_paybill, '') !~ '^[0-9]{5,7}$' THEN
        PERFORM ledger_fail('invalid_recipient', 'a paybill number of 5 to 7 digits is needed');
    END IF;
    IF p_type IN ('paybill', 'mpesa_to_bank') AND coalesce(p_account, '') !~ '^[A-Za-z0-9]{1,20}$' THEN
        PERFORM ledger_fail('invalid_recipient', 'an account number of 1 to 20 letters and digits is needed');
    END IF;
    IF p_type = 'withdraw' AND (coalesce(p_agent, '') !~ '^[0-9]{5,7}$'
                                OR coalesce(p_store, '') !~ '^[0-9]{1,7}$') THEN
        PERFORM ledger_fail('invalid_recipient', 'an agent number (5 to 7 digits) and a store number are needed');
    END IF;
    IF p_type IN ('bank_to_mpesa', 'mpesa_to_bank') AND coalesce(p_bank_code, '') !~ '^[0-9]{2}$' THEN
        PERFORM ledger_fail('invalid_recipient', 'a bank code of two digits is needed');
    END IF;
    IF p_type = 'send_phone' AND p_amount < 10 THEN
        PERFORM ledger_fail('below_minimum', 'an M-Pesa payout is at least KES 10');
    END IF;
    IF p_type = 'withdraw' AND p_amount < 50 THEN
        PERFORM ledger_fail('below_minimum', 'a withdrawal is at least KES 50');
    END IF;
END;
$$;

REVOKE ALL ON FUNCTION public.ledger_check_intent_fields(text, numeric, text, text, text, text, text, text, text) FROM PUBLIC, anon, authenticated;
