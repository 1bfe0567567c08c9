-- public.ledger_cancel: its current definition, applied again whenever this file changes (edit it here). Its
-- history, in numbered files: 0003_ledger.sql.

-- The user said no: the hold is voided. Cancelling a cancelled proposal changes nothing; a confirmed one
-- cannot be cancelled (already_confirmed).
CREATE OR REPLACE FUNCTION public.ledger_cancel(p_transaction_id UUID, p_user_id UUID, p_reason TEXT)
RETURNS public.transactions
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    v_tx transactions%ROWTYPE;
BEGIN
    PERFORM 1 FROM profiles WHERE id = p_user_id FOR UPDATE;
    SELECT * INTO v_tx FROM transactions WHERE id = p_transaction_id AND user_id = p_user_id FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM ledger_fail('not_found', 'no such proposal');
    END IF;
    IF v_tx.status = 'cancelled' THEN
        RETURN v_tx;
    ELSIF v_tx.status <> 'pending' THEN
        PERFORM ledger_fail('already_confirmed', 'the proposal was already confirmed');
    END IF;
    RETURN ledger_void(v_tx, coalesce(nullif(p_reason, ''), 'cancelled'));
END;
$$;

REVOKE ALL ON FUNCTION public.ledger_cancel(uuid, uuid, text) FROM PUBLIC, anon, authenticated;
