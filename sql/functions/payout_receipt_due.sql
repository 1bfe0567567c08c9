-- public.payout_receipt_due: its current definition, applied again whenever this file changes (edit it here).
-- Its history, in numbered files: 0023_plans.sql, 0028_business.sql.

-- A settled payout's receipt, for the person who made it (a business payment's spender, not the wallet).
CREATE OR REPLACE FUNCTION public.payout_receipt_due() RETURNS TRIGGER
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    INSERT INTO payout_receipts (transaction_id, user_id, status)
    VALUES (NEW.id, coalesce(NEW.made_by, NEW.user_id), NEW.status)
    ON CONFLICT (transaction_id) DO NOTHING;
    RETURN NULL;
END;
$$;

REVOKE ALL ON FUNCTION public.payout_receipt_due() FROM PUBLIC, anon, authenticated;

-- Where it runs.
CREATE OR REPLACE TRIGGER payout_receipt_due
    AFTER UPDATE OF status ON public.transactions
    FOR EACH ROW
    WHEN (OLD.status = 'processing' AND NEW.status IN ('completed', 'failed') AND NEW.type <> 'bank_to_mpesa')
    EXECUTE FUNCTION public.payout_receipt_due();
