-- public.app_count_contact_payment: its current definition, applied again whenever this file changes (edit it
-- here). Its history, in numbered files: 0011_app_api.sql.

-- A payment to a saved number that completes counts towards that contact (the voice matcher ranks by it).
-- Runs as the ledger (the table owner) when ledger_settle stamps the transaction completed.
CREATE OR REPLACE FUNCTION public.app_count_contact_payment() RETURNS TRIGGER
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
BEGIN
    IF NEW.status = 'completed' AND OLD.status IS DISTINCT FROM 'completed' AND coalesce(NEW.phone, '') <> ''
       AND NEW.type IN ('send_phone', 'buy_goods_pochi') THEN
        UPDATE contacts
        SET transaction_count = transaction_count + 1, total_sent = total_sent + NEW.amount
        WHERE user_id = NEW.user_id AND phone_number = NEW.phone;
    END IF;
    RETURN NULL;
END;
$$;

REVOKE ALL ON FUNCTION public.app_count_contact_payment() FROM PUBLIC, anon, authenticated;

-- Where it runs.
CREATE OR REPLACE TRIGGER transactions_count_contact_payment
    AFTER UPDATE OF status ON public.transactions
    FOR EACH ROW EXECUTE FUNCTION public.app_count_contact_payment();
