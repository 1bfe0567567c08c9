-- public.ledger_normal_reference: its current definition, applied again whenever this file changes (edit it
-- here). Its history, in numbered files: 0008_money_in.sql.

-- The reference as M-Pesa may hand it back: typed by a person, any case, spaces and dashes.
CREATE OR REPLACE FUNCTION public.ledger_normal_reference(p_ref TEXT) RETURNS TEXT
LANGUAGE sql IMMUTABLE SET search_path = public, pg_temp AS $$
    SELECT upper(regexp_replace(coalesce(p_ref, ''), '[^A-Za-z0-9]', '', 'g'))
$$;

REVOKE ALL ON FUNCTION public.ledger_normal_reference(text) FROM PUBLIC, anon, authenticated;
