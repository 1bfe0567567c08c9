-- public.ledger_adopted_guard: its current definition, applied again whenever this file changes (edit it here).
-- Its history, in numbered files: 0030_adopted_rows.sql (the `adopted` columns it guards).
--
-- Only the adoption (`migrate --adopt --apply`, user triggers off) writes rows marked `adopted`; nothing
-- changes the mark; and an adopted row moves no money: its payment is never confirmed, its top-up's status
-- is not changed by a late callback. A person correcting a listed row sets `ongea.adopt_fix` to 'on' for
-- that transaction.

CREATE OR REPLACE FUNCTION public.ledger_adopted_guard() RETURNS TRIGGER
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF NEW.adopted THEN
            RAISE EXCEPTION USING ERRCODE = 'OPL01', MESSAGE = 'adopted_row',
                DETAIL = 'only the adoption of an earlier database writes adopted rows';
        END IF;
        RETURN NEW;
    END IF;
    IF NEW.adopted IS DISTINCT FROM OLD.adopted THEN
        RAISE EXCEPTION USING ERRCODE = 'OPL01', MESSAGE = 'adopted_row',
            DETAIL = 'whether a row was adopted cannot be changed';
    END IF;
    IF OLD.adopted AND current_setting('ongea.adopt_fix', true) IS DISTINCT FROM 'on' THEN
        IF TG_TABLE_NAME = 'transactions' AND NEW.confirmed_at IS DISTINCT FROM OLD.confirmed_at THEN
            RAISE EXCEPTION USING ERRCODE = 'OPL01', MESSAGE = 'adopted_row',
                DETAIL = 'a payment from before the adoption cannot be confirmed through the ledger';
        END IF;
        IF TG_TABLE_NAME = 'mpesa_transactions' AND NEW.status IS DISTINCT FROM OLD.status THEN
            RAISE EXCEPTION USING ERRCODE = 'OPL01', MESSAGE = 'adopted_row',
                DETAIL = 'a top-up from before the adoption is not credited by the ledger';
        END IF;
    END IF;
    RETURN NEW;
END
$$;

REVOKE ALL ON FUNCTION public.ledger_adopted_guard() FROM PUBLIC, anon, authenticated;

-- Where it runs.
CREATE OR REPLACE TRIGGER transactions_adopted_guard BEFORE INSERT OR UPDATE ON public.transactions
    FOR EACH ROW EXECUTE FUNCTION public.ledger_adopted_guard();
CREATE OR REPLACE TRIGGER balance_history_adopted_guard BEFORE INSERT OR UPDATE ON public.balance_history
    FOR EACH ROW EXECUTE FUNCTION public.ledger_adopted_guard();
CREATE OR REPLACE TRIGGER mpesa_transactions_adopted_guard BEFORE INSERT OR UPDATE ON public.mpesa_transactions
    FOR EACH ROW EXECUTE FUNCTION public.ledger_adopted_guard();
