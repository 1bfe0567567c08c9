-- Adopted rows (issue 26): `ongea-pesa migrate --adopt --apply` copies the rows of a database made from the
-- earlier schema into these tables. Those transactions, balance rows and top-ups happened before our ledger:
-- no money moved through it for them, so they carry `adopted` and the invariant checker leaves them out (the
-- books start from each wallet's opening balance_history row, written by the adoption). On a fresh database
-- every row is false.
--
-- Only the adoption sets the marker (it copies with user triggers disabled): the guard refuses a row
-- inserted as adopted and any change of the marker, so nothing can hide a new payment from the invariants.
-- And an adopted row never moves money: an earlier proposal still `pending` cannot be confirmed (its
-- `expires_at` is empty, so the ledger would take it as live), and an earlier top-up's status is not changed
-- by a late callback. A person correcting a listed row sets `ongea.adopt_fix` to 'on' for that transaction.

ALTER TABLE public.transactions ADD COLUMN adopted BOOLEAN NOT NULL DEFAULT false;
ALTER TABLE public.balance_history ADD COLUMN adopted BOOLEAN NOT NULL DEFAULT false;
ALTER TABLE public.mpesa_transactions ADD COLUMN adopted BOOLEAN NOT NULL DEFAULT false;

-- An earlier completed payment has no confirmed_at: it was never confirmed through the ledger.
ALTER TABLE public.transactions DROP CONSTRAINT transactions_confirmed_check;
ALTER TABLE public.transactions ADD CONSTRAINT transactions_confirmed_check CHECK (
    adopted OR (status IN ('processing', 'completed', 'failed')) = (confirmed_at IS NOT NULL)
);

-- The guard, and the triggers that run it on these three tables: sql/functions/ledger_adopted_guard.sql.
