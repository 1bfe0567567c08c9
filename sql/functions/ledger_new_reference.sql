-- public.ledger_new_reference: its current definition, applied again whenever this file changes (edit it
-- here). Its history, in numbered files: 0008_money_in.sql.

-- A short reference a person can type in a bank app: letters and digits without 0/O/1/I/L.
CREATE OR REPLACE FUNCTION public.ledger_new_reference(p_prefix TEXT, p_length INT) RETURNS TEXT
LANGUAGE plpgsql VOLATILE SET search_path = public, pg_temp AS $$
DECLARE
    v_alphabet CONSTANT TEXT := '23456789ABCDEFGHJKMNPQRSTUVWXYZ';
    v_out TEXT := p_prefix;
BEGIN
    FOR i IN 1..p_length LOOP
        v_out := v_out || substr(v_alphabet, 1 + floor(random() * length(v_alphabet))::int, 1);
    END LOOP;
    RETURN v_out;
END;
$$;

REVOKE ALL ON FUNCTION public.ledger_new_reference(text, integer) FROM PUBLIC, anon, authenticated;
