-- Daraja as it really behaves (ledger.md, "What Daraja really does").
--
-- 1. One OAuth token per Daraja app, shared by every process through this table: each new token invalidates
--    the previous one, so a server, a second server and the CLI fetching their own would knock each other's
--    out. The row is locked (FOR UPDATE) by the one process that refreshes; the others read it.
-- 2. B2B payouts carry no OriginatorConversationID of ours: their result is matched by Daraja's
--    ConversationID (indexed here), or by the transaction id that the B2B ResultURL ends in (`payout_id`,
--    recorded with the raw callback, like `topup_id` of STK callbacks).
-- 3. References too long for Daraja are refused at proposal time, never cut: a B2B AccountReference is at
--    most 13 characters, and a bank account number cut short pays the wrong account.

CREATE TABLE public.daraja_tokens (
    app TEXT PRIMARY KEY,              -- sha256 of base URL + consumer key: which Daraja app the token is of
    access_token TEXT,
    expires_at TIMESTAMPTZ,
    refresh_at TIMESTAMPTZ,            -- ~50 minutes after the fetch; earlier when a process saw it refused
    fetched_at TIMESTAMPTZ,
    fetches BIGINT NOT NULL DEFAULT 0
);
-- Server-side only: row level security on, no policy, and no privilege for the Supabase user roles.
ALTER TABLE public.daraja_tokens ENABLE ROW LEVEL SECURITY;
REVOKE ALL ON public.daraja_tokens FROM PUBLIC;
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'authenticated') THEN
        REVOKE ALL ON public.daraja_tokens FROM authenticated;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'anon') THEN
        REVOKE ALL ON public.daraja_tokens FROM anon;
    END IF;
END
$$;

ALTER TABLE public.mpesa_callbacks ADD COLUMN payout_id UUID;
CREATE INDEX idx_mpesa_callbacks_conversation ON public.mpesa_callbacks (conversation_id)
    WHERE conversation_id IS NOT NULL;
CREATE INDEX idx_payout_outbox_conversation ON public.payout_outbox (conversation_id)
    WHERE conversation_id IS NOT NULL;
-- Set (and committed) before a B2B request goes out: a B2B resend cannot be recognised as a duplicate, so a
-- row claimed again with this set and no ConversationID is never resent (a crash or a lost answer).
ALTER TABLE public.payout_outbox ADD COLUMN b2b_sent_at TIMESTAMPTZ;

-- The check of 0005 (and of any later migration) stays as it is, renamed; the new function of the old name
-- calls it first, so ledger_propose and ledger_revise need no change.
ALTER FUNCTION public.ledger_check_intent(TEXT, NUMERIC, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT)
    RENAME TO ledger_check_intent_before_daraja_lengths;

CREATE FUNCTION public.ledger_check_intent(p_type TEXT, p_amount NUMERIC, p_phone TEXT, p_till TEXT,
    p_paybill TEXT, p_account TEXT, p_agent TEXT, p_store TEXT, p_bank_code TEXT) RETURNS VOID
LANGUAGE plpgsql IMMUTABLE SET search_path = public, pg_temp AS $$
BEGIN
    PERFORM ledger_check_intent_before_daraja_lengths(p_type, p_amount, p_phone, p_till, p_paybill,
                                                      p_account, p_agent, p_store, p_bank_code);
    IF p_type IN ('paybill', 'mpesa_to_bank') AND length(coalesce(p_account, '')) > 13 THEN
        PERFORM ledger_fail('account_too_long',
                            'M-Pesa takes an account number of at most 13 characters for a paybill');
    END IF;
END;
$$;

REVOKE EXECUTE ON FUNCTION public.ledger_check_intent(TEXT, NUMERIC, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT)
    FROM PUBLIC;
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'authenticated') THEN
        REVOKE EXECUTE ON FUNCTION
            public.ledger_check_intent(TEXT, NUMERIC, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT)
            FROM authenticated;
    END IF;
END
$$;
