-- M-Pesa (Daraja) plumbing: every callback recorded durably before it is acknowledged, the status queries
-- sent for reconciliation, and the scheduling columns of the payout and top-up workers.

-- Every callback Daraja (or anyone who knows the secret path) posted, raw, before it is acted on.
-- `outcome` is what applying it did (completed, failed, already_settled, unknown_id, amount_mismatch, ...);
-- `processed_at` NULL means it is still to be applied (e.g. an STK callback that overtook its push's answer).
CREATE TABLE public.mpesa_callbacks (
    id BIGSERIAL PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('payout_result', 'payout_timeout', 'status_result', 'status_timeout',
                                       'stk')),
    body JSONB NOT NULL,
    originator_conversation_id TEXT,
    conversation_id TEXT,
    checkout_request_id TEXT,
    result_code TEXT,
    transaction_id UUID,
    outcome TEXT,
    detail TEXT,
    received_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    processed_at TIMESTAMPTZ
);
CREATE INDEX idx_mpesa_callbacks_unprocessed ON public.mpesa_callbacks (received_at) WHERE processed_at IS NULL;
CREATE INDEX idx_mpesa_callbacks_checkout ON public.mpesa_callbacks (checkout_request_id)
    WHERE checkout_request_id IS NOT NULL;
CREATE INDEX idx_mpesa_callbacks_originator ON public.mpesa_callbacks (originator_conversation_id)
    WHERE originator_conversation_id IS NOT NULL;
CREATE INDEX idx_mpesa_callbacks_transaction ON public.mpesa_callbacks (transaction_id)
    WHERE transaction_id IS NOT NULL;
ALTER TABLE public.mpesa_callbacks ENABLE ROW LEVEL SECURITY;

-- Transaction Status queries sent for a payout: their result names the query's own ids, mapped back here.
CREATE TABLE public.mpesa_status_queries (
    id BIGSERIAL PRIMARY KEY,
    transaction_id UUID NOT NULL REFERENCES public.transactions(id),
    conversation_id TEXT,
    originator_conversation_id TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX idx_mpesa_status_queries_conversation ON public.mpesa_status_queries (conversation_id);
CREATE INDEX idx_mpesa_status_queries_originator ON public.mpesa_status_queries (originator_conversation_id);
ALTER TABLE public.mpesa_status_queries ENABLE ROW LEVEL SECURITY;

-- Payouts: when the next status query is due (set when a payout is accepted, and on a queue timeout).
ALTER TABLE public.payout_outbox
    ADD COLUMN check_due_at TIMESTAMPTZ,
    ADD COLUMN status_checks INT NOT NULL DEFAULT 0;
CREATE INDEX idx_payout_outbox_check_due ON public.payout_outbox (check_due_at) WHERE status IN ('sent', 'dead');

-- Top-ups: STK push attempts of auto top-ups, and STK queries of top-ups whose callback never came.
ALTER TABLE public.mpesa_transactions
    ADD COLUMN stk_attempts INT NOT NULL DEFAULT 0,
    ADD COLUMN stk_next_attempt_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    ADD COLUMN stk_last_error TEXT,
    ADD COLUMN query_due_at TIMESTAMPTZ;
CREATE INDEX idx_mpesa_transactions_stk_due ON public.mpesa_transactions (stk_next_attempt_at)
    WHERE status = 'pending' AND checkout_request_id IS NULL;
