-- public.app_events_prune: its current definition, applied again whenever this file changes (edit it here).
-- Its history, in numbered files: 0023_plans.sql.

CREATE OR REPLACE FUNCTION public.app_events_prune(p_keep INTERVAL, p_limit INT DEFAULT 10000) RETURNS INT
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    v_count INT;
    v_xid XID8;
    v_id BIGINT;
BEGIN
    WITH gone AS (
        DELETE FROM app_events WHERE id IN (
            SELECT id FROM app_events WHERE created_at < now() - p_keep ORDER BY created_at LIMIT p_limit)
        RETURNING xid, id)
    SELECT count(*), (SELECT g.xid FROM gone g ORDER BY g.xid DESC, g.id DESC LIMIT 1),
           (SELECT g.id FROM gone g ORDER BY g.xid DESC, g.id DESC LIMIT 1)
    INTO v_count, v_xid, v_id FROM gone;
    IF v_count > 0 THEN
        INSERT INTO app_events_pruned (xid, id) VALUES (v_xid, v_id)
        ON CONFLICT (only_row) DO UPDATE SET xid = EXCLUDED.xid, id = EXCLUDED.id
        WHERE (app_events_pruned.xid, app_events_pruned.id) < (EXCLUDED.xid, EXCLUDED.id);
    END IF;
    RETURN v_count;
END;
$$;

REVOKE ALL ON FUNCTION public.app_events_prune(interval, integer) FROM PUBLIC, anon, authenticated;
