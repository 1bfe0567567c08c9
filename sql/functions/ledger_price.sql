-- public.ledger_price: its current definition, applied again whenever this file changes (edit it here). Its
-- history, in numbered files: 0003_ledger.sql.

-- What a proposal of these fields costs the user and whether it fits, for propose and revise alike:
-- the payout phone (a cash-out goes to the user's own number), the fee of the user's plan, the hold, and
-- every refusal (fields, limits, available balance counting `p_released` that this proposal already holds).
-- The caller holds the profile lock.
CREATE OR REPLACE FUNCTION public.ledger_price(p_profile profiles, p_type TEXT, p_amount NUMERIC,
    p_phone TEXT, p_till TEXT, p_paybill TEXT, p_account TEXT, p_agent TEXT, p_store TEXT, p_bank_code TEXT,
    p_confidence_score INT, p_now TIMESTAMPTZ, p_released NUMERIC,
    OUT phone TEXT, OUT fee NUMERIC(12,2), OUT hold NUMERIC(12,2))
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    v_terms RECORD;
    v_refusal TEXT;
    v_available NUMERIC := p_profile.wallet_balance - p_profile.held_balance + p_released;
BEGIN
    phone := CASE WHEN p_type = 'withdraw'
                  THEN coalesce(nullif(p_profile.mpesa_number, ''), p_profile.phone_number)
                  ELSE coalesce(p_phone, '') END;
    PERFORM ledger_check_intent(p_type, p_amount, phone, p_till, p_paybill, p_account, p_agent, p_store,
                                p_bank_code);
    IF p_confidence_score IS NOT NULL AND (p_confidence_score < 0 OR p_confidence_score > 100) THEN
        PERFORM ledger_fail('invalid_input', 'confidence must be 0 to 100');
    END IF;
    SELECT * INTO v_terms FROM ledger_user_terms(p_profile.id, p_now);
    fee := round(p_amount * v_terms.fee_rate, 2);
    hold := CASE WHEN p_type = 'bank_to_mpesa' THEN 0 ELSE p_amount + fee END;
    IF hold > v_available THEN
        PERFORM ledger_fail('insufficient_balance', format('KES %s needed, KES %s available', hold, v_available));
    END IF;
    v_refusal := ledger_limit_refusal(p_profile.id, p_amount, v_terms.monthly_limit, p_now);
    IF v_refusal IS NOT NULL THEN
        PERFORM ledger_fail(v_refusal, ledger_limit_message(v_refusal));
    END IF;
END;
$$;

REVOKE ALL ON FUNCTION public.ledger_price(profiles, text, numeric, text, text, text, text, text, text, text, integer, timestamp with time zone, numeric) FROM PUBLIC, anon, authenticated;
