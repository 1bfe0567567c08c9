-- public.app_event_capture: its current definition, applied again whenever this file changes (edit it here).
-- Its history, in numbered files: 0023_plans.sql.

-- What the app shows of each row (never a PIN hash, a lock counter or another user's field).
CREATE OR REPLACE FUNCTION public.app_event_capture() RETURNS TRIGGER
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    v_user UUID;
    v_row UUID;
    v_data JSONB;
BEGIN
    IF TG_TABLE_NAME = 'profiles' THEN
        IF TG_OP = 'DELETE' THEN
            v_user := OLD.id; v_row := OLD.id; v_data := jsonb_build_object('id', OLD.id);
        ELSE
            v_user := NEW.id; v_row := NEW.id;
            v_data := jsonb_build_object(
                'id', NEW.id, 'wallet_balance', NEW.wallet_balance,
                'mpesa_auto_topup', NEW.mpesa_auto_topup,
                'mpesa_auto_topup_threshold', NEW.mpesa_auto_topup_threshold,
                'mpesa_auto_topup_amount', NEW.mpesa_auto_topup_amount, 'updated_at', NEW.updated_at);
        END IF;
    ELSIF TG_TABLE_NAME = 'transactions' THEN
        IF TG_OP = 'DELETE' THEN
            v_user := OLD.user_id; v_row := OLD.id; v_data := jsonb_build_object('id', OLD.id);
        ELSE
            v_user := NEW.user_id; v_row := NEW.id;
            v_data := jsonb_build_object(
                'id', NEW.id, 'type', NEW.type, 'status', NEW.status, 'amount', NEW.amount, 'fee', NEW.fee,
                'phone', NEW.phone, 'till', NEW.till, 'paybill', NEW.paybill, 'account', NEW.account,
                'agent', NEW.agent, 'store', NEW.store, 'bank_code', NEW.bank_code,
                'reference', coalesce(NEW.mpesa_transaction_id, ''), 'error_message', NEW.error_message,
                'created_at', NEW.created_at, 'confirmed_at', NEW.confirmed_at,
                'completed_at', NEW.completed_at);
        END IF;
    ELSIF TG_TABLE_NAME = 'balance_history' THEN
        IF TG_OP = 'DELETE' THEN
            v_user := OLD.user_id; v_row := OLD.id; v_data := jsonb_build_object('id', OLD.id);
        ELSE
            v_user := NEW.user_id; v_row := NEW.id;
            v_data := jsonb_build_object(
                'id', NEW.id, 'transaction_id', NEW.transaction_id, 'previous_balance', NEW.previous_balance,
                'new_balance', NEW.new_balance, 'change_amount', NEW.change_amount, 'reason', NEW.reason,
                'created_at', NEW.created_at);
        END IF;
    ELSE  -- mpesa_transactions (top-ups)
        IF TG_OP = 'DELETE' THEN
            v_user := OLD.user_id; v_row := OLD.id; v_data := jsonb_build_object('id', OLD.id);
        ELSE
            v_user := NEW.user_id; v_row := NEW.id;
            v_data := jsonb_build_object(
                'id', NEW.id, 'amount', NEW.amount, 'status', NEW.status,
                'reference', coalesce(NEW.mpesa_receipt_number, ''), 'error_message', NEW.error_message,
                'created_at', NEW.created_at, 'completed_at', NEW.completed_at);
        END IF;
    END IF;
    INSERT INTO app_events (user_id, source, op, row_id, data)
    VALUES (v_user, TG_TABLE_NAME, TG_OP, v_row, v_data);
    PERFORM pg_notify('app_events', '');  -- one notification per transaction (equal payloads fold)
    RETURN NULL;
END;
$$;

REVOKE ALL ON FUNCTION public.app_event_capture() FROM PUBLIC, anon, authenticated;

-- Where it runs.
CREATE OR REPLACE TRIGGER app_events_balance_history
    AFTER INSERT OR UPDATE OR DELETE ON public.balance_history
    FOR EACH ROW EXECUTE FUNCTION public.app_event_capture();
CREATE OR REPLACE TRIGGER app_events_mpesa_transactions
    AFTER INSERT OR UPDATE OR DELETE ON public.mpesa_transactions
    FOR EACH ROW EXECUTE FUNCTION public.app_event_capture();
CREATE OR REPLACE TRIGGER app_events_profiles
    AFTER UPDATE ON public.profiles
    FOR EACH ROW
    WHEN (OLD.wallet_balance IS DISTINCT FROM NEW.wallet_balance
          OR OLD.mpesa_auto_topup IS DISTINCT FROM NEW.mpesa_auto_topup
          OR OLD.mpesa_auto_topup_threshold IS DISTINCT FROM NEW.mpesa_auto_topup_threshold
          OR OLD.mpesa_auto_topup_amount IS DISTINCT FROM NEW.mpesa_auto_topup_amount)
    EXECUTE FUNCTION public.app_event_capture();
CREATE OR REPLACE TRIGGER app_events_profiles_insert
    AFTER INSERT OR DELETE ON public.profiles
    FOR EACH ROW EXECUTE FUNCTION public.app_event_capture();
CREATE OR REPLACE TRIGGER app_events_transactions
    AFTER INSERT OR UPDATE OR DELETE ON public.transactions
    FOR EACH ROW EXECUTE FUNCTION public.app_event_capture();
