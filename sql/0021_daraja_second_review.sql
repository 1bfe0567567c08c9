-- Daraja second review (issue 20).
-- A B2B payout's answer carries two ids Daraja assigned: its OriginatorConversationID and its
-- ConversationID. The TransactionStatus page documents the first as the one to ask by, other sources the
-- second: keep both, and ask by one and then the other.
ALTER TABLE public.payout_outbox ADD COLUMN IF NOT EXISTS daraja_originator_id TEXT;


-- Issue 18: a top-up that M-Pesa failed is never credited by a later success callback on its word; the STK
-- query decides (`needs_query`, queued in mpesa_stk_alternates under the push's own id). Otherwise as 0008.
CREATE OR REPLACE FUNCTION public.ledger_credit_stk(p_topup_id UUID, p_checkout_request_id TEXT, p_success BOOLEAN,
    p_amount NUMERIC, p_receipt TEXT, p_error TEXT, p_verified BOOLEAN DEFAULT false) RETURNS TEXT
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    v_id UUID;
    v_user UUID;
    v_row mpesa_transactions%ROWTYPE;
BEGIN
    IF coalesce(p_checkout_request_id, '') <> '' THEN
        SELECT id, user_id INTO v_id, v_user FROM mpesa_transactions
        WHERE checkout_request_id = p_checkout_request_id;
        IF v_id IS NULL THEN
            SELECT a.topup_id, m.user_id INTO v_id, v_user
            FROM mpesa_stk_alternates a JOIN mpesa_transactions m ON m.id = a.topup_id
            WHERE a.checkout_request_id = p_checkout_request_id;
        END IF;
    ELSIF NOT p_verified THEN
        RETURN 'not_found';
    END IF;
    IF v_id IS NULL AND p_topup_id IS NOT NULL THEN
        SELECT id, user_id INTO v_id, v_user FROM mpesa_transactions WHERE id = p_topup_id;
    END IF;
    IF v_id IS NULL THEN
        RETURN 'not_found';
    END IF;
    PERFORM 1 FROM profiles WHERE id = v_user FOR UPDATE;
    SELECT * INTO v_row FROM mpesa_transactions WHERE id = v_id FOR UPDATE;

    IF coalesce(p_checkout_request_id, '') = '' THEN
        NULL;  -- verified by Pull Transactions: the top-up itself
    ELSIF v_row.checkout_request_id IS NULL THEN
        IF EXISTS (SELECT 1 FROM mpesa_transactions WHERE checkout_request_id = p_checkout_request_id) THEN
            RETURN 'not_found';  -- that push belongs to another top-up
        END IF;
        DELETE FROM mpesa_stk_alternates WHERE checkout_request_id = p_checkout_request_id;
        UPDATE mpesa_transactions SET checkout_request_id = p_checkout_request_id
        WHERE id = v_id
        RETURNING * INTO v_row;
    ELSIF v_row.checkout_request_id <> p_checkout_request_id THEN
        IF NOT p_verified THEN
            INSERT INTO mpesa_stk_alternates (checkout_request_id, topup_id) VALUES (p_checkout_request_id, v_id)
            ON CONFLICT (checkout_request_id) DO NOTHING;
            RETURN 'needs_query';
        END IF;
        INSERT INTO mpesa_stk_alternates (checkout_request_id, topup_id) VALUES (p_checkout_request_id, v_id)
        ON CONFLICT (checkout_request_id) DO NOTHING;
        IF NOT p_success THEN
            UPDATE mpesa_stk_alternates SET status = 'unpaid' WHERE checkout_request_id = p_checkout_request_id;
            RETURN 'already_settled';
        END IF;
        IF v_row.status = 'completed' THEN
            UPDATE mpesa_stk_alternates SET status = 'paid_twice'
            WHERE checkout_request_id = p_checkout_request_id;
            RETURN 'paid_twice';
        END IF;
        IF p_amount IS NOT NULL AND p_amount <> v_row.amount THEN
            RETURN 'amount_mismatch';
        END IF;
        -- The paid push replaces the top-up's; the replaced one is queried like any alternate.
        DELETE FROM mpesa_stk_alternates WHERE checkout_request_id = p_checkout_request_id;
        INSERT INTO mpesa_stk_alternates (checkout_request_id, topup_id)
        VALUES (v_row.checkout_request_id, v_id)
        ON CONFLICT (checkout_request_id) DO UPDATE SET status = 'to_query', query_due_at = now();
        UPDATE mpesa_transactions SET checkout_request_id = p_checkout_request_id WHERE id = v_id
        RETURNING * INTO v_row;
    END IF;

    IF p_verified AND coalesce(p_checkout_request_id, '') <> '' THEN
        -- Our own query answered for this push: it needs no further question.
        UPDATE mpesa_stk_alternates SET status = CASE WHEN p_success THEN 'paid' ELSE 'unpaid' END
        WHERE checkout_request_id = p_checkout_request_id AND status = 'to_query';
    END IF;
    IF v_row.status = 'completed' THEN
        RETURN 'already_settled';
    END IF;
    IF v_row.status = 'failed' AND NOT p_success THEN
        RETURN 'already_settled';
    END IF;
    IF v_row.status = 'failed' AND NOT p_verified THEN
        -- A success callback for a top-up M-Pesa said failed: one of the two is wrong (or forged). Nothing
        -- is credited on a callback's word: an STK query decides (as a payout's opposite verdicts do).
        INSERT INTO mpesa_stk_alternates (checkout_request_id, topup_id, status, query_due_at)
        VALUES (v_row.checkout_request_id, v_id, 'to_query', now())
        ON CONFLICT (checkout_request_id) DO UPDATE SET status = 'to_query', query_due_at = now();
        RETURN 'needs_query';
    END IF;
    IF p_success THEN
        IF p_amount IS NOT NULL AND p_amount <> v_row.amount THEN
            RETURN 'amount_mismatch';
        END IF;
        UPDATE mpesa_transactions
        SET status = 'completed', mpesa_receipt_number = p_receipt, completed_at = now(), error_message = NULL,
            push_unknown_since = NULL
        WHERE id = v_row.id;
        PERFORM update_user_balance(v_user, NULL, v_row.amount, 'topup', v_row.id);
        RETURN 'credited';
    END IF;
    UPDATE mpesa_transactions
    SET status = 'failed', error_message = coalesce(nullif(p_error, ''), 'top-up failed'), completed_at = now()
    WHERE id = v_row.id;
    RETURN 'failed';
END;
$$;

-- Callbacks of Account Balance (the float shown to operators) and Reversal (a payout sent to the wrong
-- number, reversed at a person's request).
ALTER TABLE public.mpesa_callbacks DROP CONSTRAINT IF EXISTS mpesa_callbacks_kind_check;
ALTER TABLE public.mpesa_callbacks ADD CONSTRAINT mpesa_callbacks_kind_check CHECK (
    kind IN ('payout_result', 'payout_timeout', 'status_result', 'status_timeout', 'stk',
             'c2b_validation', 'c2b_confirmation', 'balance_result', 'reversal_result'));

-- Each Account Balance question and its answer (the accounts as Daraja reports them).
CREATE TABLE public.mpesa_balance_queries (
    id BIGSERIAL PRIMARY KEY,
    shortcode TEXT NOT NULL,
    conversation_id TEXT,
    originator_conversation_id TEXT,
    asked_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    answered_at TIMESTAMPTZ,
    result_code TEXT,
    result_desc TEXT,
    accounts JSONB
);
CREATE INDEX idx_mpesa_balance_queries_conversation ON public.mpesa_balance_queries (conversation_id);

-- A reversal of a completed payout, asked for by a person. Money: M-Pesa takes the amount back from the
-- recipient into the shortcode it left; once its result says so (with the reversal's own receipt), the
-- sender's wallet gets the amount back (`reason = 'reversal'`). The fee is not returned: the payout was
-- made. At most one reversal per payout.
CREATE TABLE public.mpesa_reversals (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    transaction_id UUID NOT NULL UNIQUE REFERENCES public.transactions(id),
    receipt TEXT NOT NULL,
    amount NUMERIC(12,2) NOT NULL CHECK (amount > 0),
    reason TEXT NOT NULL,
    requested_by TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'requested' CHECK (status IN ('requested', 'sent', 'completed', 'failed')),
    conversation_id TEXT,
    originator_conversation_id TEXT,
    reversal_receipt TEXT,
    result_code TEXT,
    result_desc TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    completed_at TIMESTAMPTZ
);
CREATE INDEX idx_mpesa_reversals_conversation ON public.mpesa_reversals (conversation_id);
ALTER TABLE public.mpesa_balance_queries ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.mpesa_reversals ENABLE ROW LEVEL SECURITY;
REVOKE ALL ON public.mpesa_balance_queries, public.mpesa_reversals FROM PUBLIC;
REVOKE ALL ON SEQUENCE public.mpesa_balance_queries_id_seq FROM PUBLIC;

-- A person asks to reverse a completed payout (not a bank_to_mpesa, which paid nothing out).
CREATE FUNCTION public.ledger_request_reversal(p_transaction_id UUID, p_reason TEXT, p_requested_by TEXT)
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

-- The reversal's result: completed credits the sender the payout's amount once (backed by the reversal's
-- receipt: invariant 6), failed credits nothing. A second result changes nothing.
CREATE FUNCTION public.ledger_apply_reversal(p_reversal_id UUID, p_success BOOLEAN, p_receipt TEXT,
    p_code TEXT, p_desc TEXT) RETURNS TEXT
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    v_rev mpesa_reversals%ROWTYPE;
    v_user UUID;
BEGIN
    SELECT user_id INTO v_user FROM transactions
    WHERE id = (SELECT transaction_id FROM mpesa_reversals WHERE id = p_reversal_id);
    IF v_user IS NULL THEN
        RETURN 'unknown_id';
    END IF;
    PERFORM 1 FROM profiles WHERE id = v_user FOR UPDATE;
    SELECT * INTO v_rev FROM mpesa_reversals WHERE id = p_reversal_id FOR UPDATE;
    IF v_rev.status IN ('completed', 'failed') THEN
        RETURN 'already_settled';
    END IF;
    IF p_success AND coalesce(btrim(p_receipt), '') = '' THEN
        RETURN 'malformed';  -- a completed reversal without its receipt backs no credit
    END IF;
    UPDATE mpesa_reversals
    SET status = CASE WHEN p_success THEN 'completed' ELSE 'failed' END, reversal_receipt = p_receipt,
        result_code = p_code, result_desc = p_desc, completed_at = now()
    WHERE id = p_reversal_id;
    IF NOT p_success THEN
        RETURN 'failed';
    END IF;
    PERFORM update_user_balance(v_user, v_rev.transaction_id, v_rev.amount, 'reversal');
    RETURN 'reversed';
END;
$$;
REVOKE ALL ON FUNCTION public.ledger_request_reversal(UUID, TEXT, TEXT) FROM PUBLIC;
REVOKE ALL ON FUNCTION public.ledger_apply_reversal(UUID, BOOLEAN, TEXT, TEXT, TEXT) FROM PUBLIC;
DO $$
DECLARE
    r TEXT;
BEGIN
    FOREACH r IN ARRAY ARRAY['anon', 'authenticated'] LOOP
        IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
            EXECUTE format('REVOKE ALL ON public.mpesa_balance_queries, public.mpesa_reversals FROM %I', r);
            EXECUTE format('REVOKE ALL ON SEQUENCE public.mpesa_balance_queries_id_seq FROM %I', r);
            EXECUTE format('REVOKE ALL ON FUNCTION public.ledger_request_reversal(UUID, TEXT, TEXT) FROM %I', r);
            EXECUTE format('REVOKE ALL ON FUNCTION public.ledger_apply_reversal(UUID, BOOLEAN, TEXT, TEXT, TEXT) '
                           'FROM %I', r);
        END IF;
    END LOOP;
END;
$$;
