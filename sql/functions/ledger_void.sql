-- public.ledger_void: its current definition, applied again whenever this file changes (edit it here). Its
-- history, in numbered files: 0003_ledger.sql.

-- Voids a pending proposal's hold. Internal: the caller holds the profile and transaction locks.
CREATE OR REPLACE FUNCTION public.ledger_void(p_tx transactions, p_reason TEXT) RETURNS public.transactions
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    v_row transactions%ROWTYPE;
BEGIN
    UPDATE profiles SET held_balance = held_balance - p_tx.hold_amount WHERE id = p_tx.user_id;
    UPDATE transactions SET status = 'cancelled', error_message = p_reason
    WHERE id = p_tx.id
    RETURNING * INTO v_row;
    RETURN v_row;
END;
$$;

REVOKE ALL ON FUNCTION public.ledger_void(transactions, text) FROM PUBLIC, anon, authenticated;
