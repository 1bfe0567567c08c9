-- public.ledger_user_terms: its current definition, applied again whenever this file changes (edit it here).
-- Its history, in numbered files: 0003_ledger.sql, 0028_business.sql.

-- The fee rate and monthly limit of the user's plan: the active subscription covering p_now, else 'free'.
-- A business wallet pays on its owner's plan.
CREATE OR REPLACE FUNCTION public.ledger_user_terms(p_user_id UUID, p_now TIMESTAMPTZ,
    OUT fee_rate NUMERIC, OUT monthly_limit INT)
LANGUAGE plpgsql STABLE SET search_path = public, pg_temp AS $$
DECLARE
    v_payer UUID := coalesce((SELECT b.owner_id FROM businesses b WHERE b.id = p_user_id), p_user_id);
BEGIN
    SELECT s.transaction_fee_percentage, s.monthly_transaction_limit INTO fee_rate, monthly_limit
    FROM subscriptions s
    WHERE s.user_id = v_payer AND s.status = 'active'
      AND p_now >= s.current_period_start AND p_now < s.current_period_end
    ORDER BY s.current_period_start DESC
    LIMIT 1;
    IF NOT FOUND THEN
        SELECT p.transaction_fee_percentage, p.monthly_transaction_limit INTO fee_rate, monthly_limit
        FROM subscription_plans p WHERE p.id = 'free';
    END IF;
END;
$$;

REVOKE ALL ON FUNCTION public.ledger_user_terms(uuid, timestamp with time zone) FROM PUBLIC, anon, authenticated;
