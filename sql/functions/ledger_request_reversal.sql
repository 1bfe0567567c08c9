-- public.ledger_request_reversal: its current definition, applied again whenever this file changes (edit it
-- here). Its history, in numbered files: 0021_daraja_second_review.sql.

-- A person asks to reverse a completed payout (not a bank_to_mpesa, which paid nothing out).
CREATE OR REPLACE FUNCTION public.ledger_request_reversal(p_transaction_id UUID, p_reason TEXT, p_requested_by TEXT)
RETURNS UUID
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    v_tx transactions%ROWTYPE;
    v_id UUID;
BEGIN
    SELECT * INTO v_tx FROM transactions WHERE id = p_transaction_id FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM ledger_fail('not_found', 'no such transaction');
    END IF;
    IF v_tx.type = 'bank_to_mpesa' OR v_tx.status <> 'completed' OR coalesce(v_tx.mpesa_transaction_id, '') = '' THEN
        PERFORM ledger_fail('not_reversible', 'only a completed payout with an M-Pesa receipt can be reversed');
    END IF;
    IF coalesce(btrim(p_reason), '') = '' OR coalesce(btrim(p_requested_by), '') = '' THEN
        PERFORM ledger_fail('invalid_request', 'a reversal needs a reason and who asks for it');
    END IF;
    INSERT INTO mpesa_reversals (transaction_id, receipt, amount, reason, requested_by)
    VALUES (v_tx.id, v_tx.mpesa_transaction_id, v_tx.amount, p_reason, p_requested_by)
    ON CONFLICT (transaction_id) DO NOTHING
    RETURNING id INTO v_id;
    IF v_id IS NULL THEN
        PERFORM ledger_fail('already_requested', 'this payout has a reversal already');
    END IF;
    RETURN v_id;
END;
$$;

REVOKE ALL ON FUNCTION public.ledger_request_reversal(uuid, text, text) FROM PUBLIC, anon, authenticated;
