-- public.app_contact_totals: its current definition, applied again whenever this file changes (edit it here).
-- Its history, in numbered files: 0011_app_api.sql.

-- A contact saved (or renumbered) after payments to its number starts from those payments, so the totals
-- always equal the user's completed payments to the number, whenever it was saved. Runs as the inserting
-- user: the policies on transactions let it count only that user's own payments.
CREATE OR REPLACE FUNCTION public.app_contact_totals() RETURNS TRIGGER
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
BEGIN
    IF TG_OP = 'INSERT' OR NEW.phone_number IS DISTINCT FROM OLD.phone_number THEN
        SELECT count(*), coalesce(sum(amount), 0) INTO NEW.transaction_count, NEW.total_sent
        FROM transactions
        WHERE user_id = NEW.user_id AND phone = NEW.phone_number AND status = 'completed'
          AND type IN ('send_phone', 'buy_goods_pochi');
    END IF;
    RETURN NEW;
END;
$$;

REVOKE ALL ON FUNCTION public.app_contact_totals() FROM PUBLIC, anon, authenticated;

-- Where it runs.
CREATE OR REPLACE TRIGGER contacts_totals_from_payments
    BEFORE INSERT OR UPDATE OF phone_number ON public.contacts
    FOR EACH ROW EXECUTE FUNCTION public.app_contact_totals();
