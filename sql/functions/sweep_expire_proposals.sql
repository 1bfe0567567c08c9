-- public.sweep_expire_proposals: its current definition, applied again whenever this file changes (edit it
-- here). Its history, in numbered files: 0012_conversation_server.sql.

-- Voids up to p_limit pending proposals past their time to live. The proposal row and its owner's profile
-- are both taken with SKIP LOCKED (never waited for), so this cannot deadlock with a confirmation, which
-- locks the profile first; a skipped row is taken by the next pass. Returns how many it voided.
CREATE OR REPLACE FUNCTION public.sweep_expire_proposals(p_limit INT DEFAULT 500) RETURNS INT
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    v_due RECORD;
    v_tx transactions%ROWTYPE;
    v_count INT := 0;
BEGIN
    FOR v_due IN
        SELECT id, user_id FROM transactions
        WHERE status = 'pending' AND expires_at <= now()
        ORDER BY expires_at
        LIMIT p_limit
        FOR UPDATE SKIP LOCKED
    LOOP
        PERFORM 1 FROM profiles WHERE id = v_due.user_id FOR UPDATE SKIP LOCKED;
        CONTINUE WHEN NOT FOUND;
        SELECT * INTO v_tx FROM transactions WHERE id = v_due.id;
        IF v_tx.status = 'pending' AND v_tx.expires_at <= now() THEN
            PERFORM ledger_void(v_tx, 'expired');
            v_count := v_count + 1;
        END IF;
    END LOOP;
    RETURN v_count;
END;
$$;

REVOKE ALL ON FUNCTION public.sweep_expire_proposals(integer) FROM PUBLIC, anon, authenticated;
