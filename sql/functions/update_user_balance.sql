-- public.update_user_balance: its current definition, applied again whenever this file changes (edit it
-- here). Its history, in numbered files: 0002_founding_schema.sql (dropped in 0003_ledger.sql),
-- 0003_ledger.sql.

CREATE OR REPLACE FUNCTION public.update_user_balance(
    p_user_id UUID,
    p_transaction_id UUID,
    p_change_amount DECIMAL(12,2),
    p_reason TEXT,
    p_topup_id UUID DEFAULT NULL,
    p_release_hold NUMERIC DEFAULT 0
) RETURNS NUMERIC
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    v_current NUMERIC(12,2);
    v_held NUMERIC(12,2);
    v_new NUMERIC(12,2);
BEGIN
    SELECT wallet_balance, held_balance - p_release_hold INTO v_current, v_held
    FROM profiles WHERE id = p_user_id FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM ledger_fail('user_not_found', 'no such user');
    END IF;
    v_current := coalesce(v_current, 0);
    v_new := v_current + p_change_amount;
    IF v_new < 0 OR v_new - v_held < 0 THEN
        PERFORM ledger_fail('insufficient_balance', 'Insufficient balance');
    END IF;
    -- (p_release_hold: a confirmation posts its hold in the same row update as its debit)
    UPDATE profiles SET wallet_balance = v_new, held_balance = v_held, updated_at = now() WHERE id = p_user_id;
    INSERT INTO balance_history (user_id, transaction_id, previous_balance, new_balance, change_amount,
                                 reason, topup_id)
    VALUES (p_user_id, p_transaction_id, v_current, v_new, p_change_amount, p_reason, p_topup_id);
    RETURN v_new;
END;
$$;

REVOKE ALL ON FUNCTION public.update_user_balance(uuid, uuid, numeric, text, uuid, numeric) FROM PUBLIC, anon, authenticated;
