-- Business accounts (issue 23, `features.multi_user` and `white_label` of the Business plan): a business
-- wallet owned by a Business-plan user and shared by a team.
--
-- * The business wallet is a wallet like any other: a `profiles` row (with its `auth.users` row, no phone, no
--   PIN, never signed in), so its balance, holds, history, fees, limits, payouts, receipts and the invariants
--   are the ledger's own, unchanged. `businesses` names it, its owner, display name and colour.
-- * `business_members`: people invited by phone with a role: owner (one), admin (manages members, approves),
--   spender (pays within `daily_limit`; a payment above `approval_amount` waits for approval), viewer (reads).
--   A member removed keeps the row (`removed_at`) and loses everything at once: their voice sessions for the
--   business end (ws_generation moves, so open WebSockets close), their waiting payments are voided.
-- * Who may spend from it is decided here, under the row locks, in the same commit as the money: the member's
--   role and daily limit, the approval amount, and the member's own PIN gate (sql/0019: their PIN, their lock,
--   their allowance). The wallet's profile needs no PIN of its own: `ledger_needs_pin` says every payment from
--   a business wallet needs the evidence of a PIN, which only the business functions below leave, after
--   checking the member's gate; so calling ledger_confirm on a business wallet directly cannot pay.
-- * A payment above the spender's approval amount is read back and held as usual; the spender's confirmation
--   moves it to `approval_state = 'awaiting'` (still `pending`, hold kept, `expires_at` = 24 hours later, no
--   longer tied to the session). An owner or admin approves or rejects it with their PIN (business_decide,
--   exactly once under the wallet's and the transaction's row locks), or the sweeper expires it and releases
--   the hold. The spender is told the outcome as a receipt (`payout_receipts`, sql/0023).
-- * Every payment records who made it (`made_by`) and who approved it (`approved_by`).
-- * Row level security: a member reads a business only for the wallet the server names in the transaction
--   setting `ongea.wallet` (the app's own reads stay the user's own rows, as before), and only as their role
--   allows: owner, admin and viewer see the business's transactions and history, a spender their own payments.
--
-- The functions, their triggers and the policies are in sql/functions/ and sql/policies/ (sql/README.md): the
-- business_* files, and the changed ledger_user_terms, plan_features, ledger_needs_pin, ledger_proposal_gate,
-- payout_receipt_due, sweep_expire_sessions, ledger_refuse_write (the guards of the new tables) and the policies
-- of profiles, transactions and balance_history.

-- ---------------------------------------------------------------------------------------------------------
-- Schema
-- ---------------------------------------------------------------------------------------------------------

CREATE TABLE public.businesses (
    id UUID PRIMARY KEY REFERENCES public.profiles(id) ON DELETE CASCADE,  -- the wallet's profile
    owner_id UUID NOT NULL REFERENCES public.profiles(id) ON DELETE CASCADE,
    display_name TEXT NOT NULL CHECK (char_length(btrim(display_name)) BETWEEN 1 AND 80),
    colour TEXT NOT NULL DEFAULT '#1b5e20' CHECK (colour ~ '^#[0-9a-f]{6}$'),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX businesses_owner ON public.businesses (owner_id);

CREATE TABLE public.business_members (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    business_id UUID NOT NULL REFERENCES public.businesses(id) ON DELETE CASCADE,
    phone TEXT NOT NULL CHECK (phone ~ '^254[17][0-9]{8}$'),
    user_id UUID REFERENCES public.profiles(id) ON DELETE CASCADE,  -- NULL until someone with the phone signs up
    role TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'spender', 'viewer')),
    daily_limit NUMERIC(12,2) NOT NULL DEFAULT 0 CHECK (daily_limit >= 0 AND daily_limit <= 500000),
    approval_amount NUMERIC(12,2) NOT NULL DEFAULT 0 CHECK (approval_amount >= 0 AND approval_amount <= 250000),
    invited_by UUID REFERENCES public.profiles(id) ON DELETE SET NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    removed_at TIMESTAMPTZ,
    removed_by UUID REFERENCES public.profiles(id) ON DELETE SET NULL
);
CREATE UNIQUE INDEX business_members_one_phone ON public.business_members (business_id, phone)
    WHERE removed_at IS NULL;
CREATE UNIQUE INDEX business_members_one_owner ON public.business_members (business_id)
    WHERE role = 'owner' AND removed_at IS NULL;
CREATE INDEX business_members_user ON public.business_members (user_id) WHERE removed_at IS NULL;
CREATE INDEX business_members_unbound ON public.business_members (phone)
    WHERE user_id IS NULL AND removed_at IS NULL;

-- Who made a payment and who approved it; the approval of a spender's payment above their approval amount.
ALTER TABLE public.transactions
    ADD COLUMN made_by UUID REFERENCES public.profiles(id) ON DELETE SET NULL,
    ADD COLUMN needs_approval BOOLEAN NOT NULL DEFAULT false,
    ADD COLUMN approval_state TEXT CHECK (approval_state IN
        ('awaiting', 'approved', 'rejected', 'expired', 'cancelled', 'refused')),
    ADD COLUMN approval_requested_at TIMESTAMPTZ,
    ADD COLUMN approved_by UUID REFERENCES public.profiles(id) ON DELETE SET NULL,
    ADD COLUMN approval_decided_by UUID REFERENCES public.profiles(id) ON DELETE SET NULL,
    ADD COLUMN approval_decided_at TIMESTAMPTZ;
ALTER TABLE public.transactions
    ADD CONSTRAINT transactions_awaiting_is_pending CHECK (approval_state IS DISTINCT FROM 'awaiting'
                                                           OR status = 'pending');
CREATE INDEX transactions_made_by ON public.transactions (user_id, made_by) WHERE made_by IS NOT NULL;
CREATE INDEX transactions_awaiting ON public.transactions (user_id, approval_requested_at)
    WHERE approval_state = 'awaiting';

-- The wallet a voice session speaks for (NULL: the user's own).
ALTER TABLE public.voice_sessions
    ADD COLUMN wallet_id UUID REFERENCES public.profiles(id) ON DELETE CASCADE;
CREATE INDEX voice_sessions_wallet ON public.voice_sessions (wallet_id, user_id)
    WHERE wallet_id IS NOT NULL AND status = 'active';

-- The spender hears how an approval ended, as a receipt.
ALTER TABLE public.payout_receipts DROP CONSTRAINT payout_receipts_status_check;
ALTER TABLE public.payout_receipts
    ADD CONSTRAINT payout_receipts_status_check CHECK (status IN ('completed', 'failed', 'rejected', 'expired'));

ALTER TABLE public.businesses ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.business_members ENABLE ROW LEVEL SECURITY;

REVOKE ALL ON public.businesses, public.business_members FROM PUBLIC;
DO $$
DECLARE
    r TEXT;
BEGIN
    FOREACH r IN ARRAY ARRAY['authenticated', 'anon'] LOOP
        IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
            EXECUTE format('REVOKE ALL ON public.businesses, public.business_members FROM %I', r);
        END IF;
    END LOOP;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'authenticated') THEN
        EXECUTE 'GRANT SELECT ON public.businesses, public.business_members TO authenticated';
    END IF;
END
$$;
