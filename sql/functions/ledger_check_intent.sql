-- public.ledger_check_intent: its current definition, applied again whenever this file changes (edit it
-- here). Its history, in numbered files: 0010_daraja_as_it_behaves.sql.

-- Whether an intent is a well-formed payment of its type (codes as the intent parser's), in three layers
-- kept from history: this one (0010: M-Pesa's 13-character paybill account) calls
-- ledger_check_intent_before_daraja_lengths (0005: whole shillings only), which calls
-- ledger_check_intent_fields (0003: the type, the amount and its limit, the recipient's fields).
CREATE OR REPLACE FUNCTION public.ledger_check_intent(p_type TEXT, p_amount NUMERIC, p_phone TEXT, p_till TEXT,
    p_paybill TEXT, p_account TEXT, p_agent TEXT, p_store TEXT, p_bank_code TEXT) RETURNS VOID
LANGUAGE plpgsql IMMUTABLE SET search_path = public, pg_temp AS $$
BEGIN
    PERFORM ledger_check_intent_before_daraja_lengths(p_type, p_amount, p_phone, p_till, p_paybill,
                                                      p_account, p_agent, p_store, p_bank_code);
    IF p_type IN ('paybill', 'mpesa_to_bank') AND length(coalesce(p_account, '')) > 13 THEN
        PERFORM ledger_fail('account_too_long',
                            'M-Pesa takes an account number of at most 13 characters for a paybill');
    END IF;
END;
$$;

REVOKE ALL ON FUNCTION public.ledger_check_intent(text, numeric, text, text, text, text, text, text, text) FROM PUBLIC, anon, authenticated;
