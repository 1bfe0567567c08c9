-- public.ledger_check_intent_before_daraja_lengths: its current definition, applied again whenever this file
-- changes (edit it here). Its history, in numbered files: 0005_harden_user_access.sql,
-- 0010_daraja_as_it_behaves.sql (renamed from ledger_check_intent).

CREATE OR REPLACE FUNCTION public.ledger_check_intent_before_daraja_lengths(p_type TEXT, p_amount NUMERIC, p_phone TEXT, p_till TEXT,
    p_paybill TEXT, p_account TEXT, p_agent TEXT, p_store TEXT, p_bank_code TEXT) RETURNS VOID
LANGUAGE plpgsql IMMUTABLE SET search_path = public, pg_temp AS $$
BEGIN
    PERFORM ledger_check_intent_fields(p_type, p_amount, p_phone, p_till, p_paybill, p_account, p_agent,
                                       p_store, p_bank_code);
    IF p_type <> 'bank_to_mpesa' AND p_amount <> trunc(p_amount) THEN
        PERFORM ledger_fail('invalid_amount', 'M-Pesa moves whole shillings only');
    END IF;
END;
$$;

REVOKE ALL ON FUNCTION public.ledger_check_intent_before_daraja_lengths(text, numeric, text, text, text, text, text, text, text) FROM PUBLIC, anon, authenticated;
