-- public.ledger_expire_due: its current definition, applied again whenever this file changes (edit it here).
-- Its history, in numbered files: 0003_ledger.sql.

-- Cancels every pending proposal whose time to live ran out by p_now (reason 'expired'); returns how many.
-- Not the server's sweeper (that is sweep_expire_proposals, batched, skipping locked rows): this one waits
-- for every lock, and takes the caller's clock (Ledger.expire_due).
CREATE OR REPLACE FUNCTION public.ledger_expire_due(p_now TIMESTAMPTZ DEFAULT NULL) RETURNS INT
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    v_now TIMESTAMPTZ := coalesce(p_now, now());
    v_due RECORD;
    v_tx transactions%ROWTYPE;
    v_count INT := 0;
BEGIN
    FOR v_due IN
        SELECT id, user_id FROM transactions WHERE status = 'pending' AND expires_at <= v_now
        ORDER BY user_id, id
    LOOP
        PERFORM 1 FROM profiles WHERE id = v_due.user_id FOR UPDATE;
        SELECT * INTO v_tx FROM transactions WHERE id = v_due.id FOR UPDATE;
        IF v_tx.status = 'pending' AND v_tx.expires_at <= v_now THEN
            PERFORM ledger_void(v_tx, 'expired');
            v_count := v_count + 1;
        END IF;
    END LOOP;
    RETURN v_count;
END;
$$;

REVOKE ALL ON FUNCTION public.ledger_expire_due(timestamp with time zone) FROM PUBLIC, anon, authenticated;
