-- public.transactions_made_by: its current definition, applied again whenever this file changes (edit it
-- here). Its history, in numbered files: 0028_business.sql.

-- Every payment records who made it: the wallet's own person unless a business function says otherwise.
CREATE OR REPLACE FUNCTION public.transactions_made_by() RETURNS TRIGGER
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
BEGIN
    NEW.made_by := coalesce(NEW.made_by, NEW.user_id);
    RETURN NEW;
END;
$$;

REVOKE ALL ON FUNCTION public.transactions_made_by() FROM PUBLIC, anon, authenticated;

-- Where it runs.
CREATE OR REPLACE TRIGGER transactions_made_by BEFORE INSERT ON public.transactions
    FOR EACH ROW EXECUTE FUNCTION public.transactions_made_by();
