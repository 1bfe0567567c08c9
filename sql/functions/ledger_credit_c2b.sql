-- public.ledger_credit_c2b: its current definition, applied again whenever this file changes (edit it here).
-- Its history, in numbered files: 0008_money_in.sql.

-- A C2B confirmation (or a Pull Transactions line): recorded once per TransID; when its reference names an
-- awaited deposit, that bank_to_mpesa completes with the amount that arrived (fee at the user's rate now)
-- and the wallet is credited amount then -fee. Returns the deposit's outcome, or 'already_recorded'.
CREATE OR REPLACE FUNCTION public.ledger_credit_c2b(p_trans_id TEXT, p_bill_ref TEXT, p_amount NUMERIC,
    p_short_code TEXT, p_trans_time TEXT, p_msisdn TEXT, p_first_name TEXT, p_type TEXT,
    p_source TEXT DEFAULT 'confirmation') RETURNS TEXT
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    v_ref TEXT := ledger_normal_reference(p_bill_ref);
    v_deposit BIGINT;
    v_expected c2b_expected_deposits%ROWTYPE;
    v_tx transactions%ROWTYPE;
    v_paybill TEXT;
    v_terms RECORD;
    v_fee NUMERIC(12,2);
    v_outcome TEXT;
BEGIN
    IF coalesce(p_trans_id, '') = '' OR p_amount IS NULL OR p_amount <= 0 OR p_amount <> round(p_amount, 2) THEN
        PERFORM ledger_fail('invalid_input', 'a deposit needs a TransID and a positive amount');
    END IF;
    INSERT INTO c2b_deposits (trans_id, bill_ref_number, account_reference, amount, business_short_code,
                              trans_time, msisdn, first_name, transaction_type, source, outcome)
    VALUES (p_trans_id, left(coalesce(p_bill_ref, ''), 100), v_ref, p_amount, coalesce(p_short_code, ''),
            coalesce(p_trans_time, ''), left(coalesce(p_msisdn, ''), 100), left(coalesce(p_first_name, ''), 100),
            left(coalesce(p_type, ''), 100), p_source, 'recording')
    ON CONFLICT (trans_id) DO NOTHING
    RETURNING id INTO v_deposit;
    IF v_deposit IS NULL THEN
        RETURN 'already_recorded';
    END IF;

    SELECT shortcode INTO v_paybill FROM c2b_paybill;
    SELECT * INTO v_expected FROM c2b_expected_deposits WHERE account_reference = v_ref;
    IF coalesce(p_short_code, '') <> '' AND p_short_code <> v_paybill THEN
        v_outcome := 'wrong_shortcode';
    ELSIF NOT FOUND THEN
        v_outcome := 'unmatched';
    ELSIF p_amount > 999999 THEN
        v_outcome := 'too_large';
    END IF;
    IF v_outcome IS NOT NULL THEN
        UPDATE c2b_deposits SET outcome = v_outcome, user_id = v_expected.user_id WHERE id = v_deposit;
        RETURN v_outcome;
    END IF;

    -- Lock order of the ledger: the profile, then the rows.
    PERFORM 1 FROM profiles WHERE id = v_expected.user_id FOR UPDATE;
    SELECT * INTO v_expected FROM c2b_expected_deposits WHERE transaction_id = v_expected.transaction_id
    FOR UPDATE;
    SELECT * INTO v_tx FROM transactions WHERE id = v_expected.transaction_id FOR UPDATE;
    IF v_expected.status <> 'awaiting' OR v_tx.status <> 'processing' THEN
        v_outcome := CASE WHEN v_expected.status = 'expired' THEN 'reference_expired' ELSE 'reference_used' END;
        UPDATE c2b_deposits SET outcome = v_outcome, user_id = v_expected.user_id WHERE id = v_deposit;
        RETURN v_outcome;
    END IF;

    SELECT * INTO v_terms FROM ledger_user_terms(v_tx.user_id, now());
    v_fee := round(p_amount * v_terms.fee_rate, 2);
    UPDATE ledger_usage SET confirmed_amount = confirmed_amount + p_amount - v_tx.amount
    WHERE user_id = v_tx.user_id AND day = ledger_nairobi_day(v_tx.confirmed_at);
    UPDATE transactions
    SET amount = p_amount, fee = v_fee, status = 'completed', mpesa_transaction_id = p_trans_id,
        completed_at = now()
    WHERE id = v_tx.id;
    PERFORM update_user_balance(v_tx.user_id, v_tx.id, p_amount, 'bank_credit');
    PERFORM update_user_balance(v_tx.user_id, v_tx.id, -v_fee, 'bank_credit_fee');
    UPDATE c2b_expected_deposits SET status = 'received' WHERE transaction_id = v_tx.id;
    UPDATE c2b_deposits SET outcome = 'credited', user_id = v_tx.user_id, transaction_id = v_tx.id
    WHERE id = v_deposit;
    RETURN 'credited';
END;
$$;

REVOKE ALL ON FUNCTION public.ledger_credit_c2b(text, text, numeric, text, text, text, text, text, text) FROM PUBLIC, anon, authenticated;
