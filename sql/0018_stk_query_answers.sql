-- The answers of our own STK queries, kept as the M-Pesa fact behind a top-up credited by query.
--
-- A top-up credited by a callback has that callback recorded (mpesa_callbacks, kind 'stk') and usually its
-- receipt; one credited by Pull Transactions carries the TransID as its receipt. One credited by an STK query
-- (a push whose callback never came) has neither: the query answer has no receipt. Invariant 6 accepted any
-- completed top-up with a CheckoutRequestID, so a top-up marked completed by hand passed; now it needs a
-- receipt, a successful callback or a successful query answer recorded here.
-- Server-side only: row level security on and no grant to users.
CREATE TABLE public.mpesa_stk_queries (
    id BIGSERIAL PRIMARY KEY,
    checkout_request_id TEXT NOT NULL,
    result_code TEXT NOT NULL,
    body JSONB NOT NULL,
    asked_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX idx_mpesa_stk_queries_checkout ON public.mpesa_stk_queries (checkout_request_id);
ALTER TABLE public.mpesa_stk_queries ENABLE ROW LEVEL SECURITY;
REVOKE ALL ON public.mpesa_stk_queries FROM PUBLIC;
REVOKE ALL ON SEQUENCE public.mpesa_stk_queries_id_seq FROM PUBLIC;
DO $$
DECLARE
    r TEXT;
BEGIN
    FOREACH r IN ARRAY ARRAY['anon', 'authenticated'] LOOP
        IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
            EXECUTE format('REVOKE ALL ON public.mpesa_stk_queries FROM %I', r);
            EXECUTE format('REVOKE ALL ON SEQUENCE public.mpesa_stk_queries_id_seq FROM %I', r);
        END IF;
    END LOOP;
END;
$$;
