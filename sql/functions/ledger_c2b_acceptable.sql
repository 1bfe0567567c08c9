-- public.ledger_c2b_acceptable: its current definition, applied again whenever this file changes (edit it
-- here). Its history, in numbered files: 0008_money_in.sql.

-- Whether a deposit with this reference would be credited now (the C2B validation answer).
CREATE OR REPLACE FUNCTION public.ledger_c2b_acceptable(p_bill_ref TEXT) RETURNS BOOLEAN
LANGUAGE sql STABLE SET search_path = public, pg_temp AS $$
    SELECT EXISTS (SELECT 1 FROM c2b_expected_deposits
                   WHERE account_reference = ledger_normal_reference(p_bill_ref) AND status = 'awaiting')
$$;

REVOKE ALL ON FUNCTION public.ledger_c2b_acceptable(text) FROM PUBLIC, anon, authenticated;
