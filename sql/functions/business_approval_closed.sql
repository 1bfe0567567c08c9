-- public.business_approval_closed: its current definition, applied again whenever this file changes (edit it
-- here). Its history, in numbered files: 0028_business.sql.

-- A payment waiting for approval that is voided by anything but a decision (the sweeper after 24 hours, the
-- member's removal) says so, and its maker is told (a receipt, like a payout's).
CREATE OR REPLACE FUNCTION public.business_approval_closed() RETURNS TRIGGER
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
BEGIN
    IF OLD.status = 'pending' AND NEW.status = 'cancelled' AND OLD.approval_state = 'awaiting'
       AND NEW.approval_state = 'awaiting' THEN
        NEW.approval_state := CASE WHEN NEW.error_message = 'expired' THEN 'expired' ELSE 'cancelled' END;
        NEW.approval_decided_at := now();
        IF NEW.approval_state = 'expired' THEN
            INSERT INTO payout_receipts (transaction_id, user_id, status)
            VALUES (NEW.id, NEW.made_by, 'expired')
            ON CONFLICT (transaction_id) DO NOTHING;
        END IF;
    END IF;
    RETURN NEW;
END;
$$;

REVOKE ALL ON FUNCTION public.business_approval_closed() FROM PUBLIC, anon, authenticated;

-- Where it runs.
CREATE OR REPLACE TRIGGER business_approval_closed BEFORE UPDATE OF status ON public.transactions
    FOR EACH ROW WHEN (OLD.approval_state = 'awaiting')
    EXECUTE FUNCTION public.business_approval_closed();
