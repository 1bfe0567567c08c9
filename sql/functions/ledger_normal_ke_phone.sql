-- public.ledger_normal_ke_phone: its current definition, applied again whenever this file changes (edit it
-- here). Its history, in numbered files: 0022_signup.sql.

-- Kenyan mobile numbers in the one form the ledger stores, 2547XXXXXXXX / 2541XXXXXXXX (Supabase Auth keeps
-- E.164 without the "+"; a person may also type 07..., +254 7..., 254 07...); NULL for anything else.
CREATE OR REPLACE FUNCTION public.ledger_normal_ke_phone(p_phone TEXT) RETURNS TEXT
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE
        WHEN d ~ '^254[17][0-9]{8}$' THEN d
        WHEN d ~ '^2540[17][0-9]{8}$' THEN '254' || substr(d, 5)
        WHEN d ~ '^0[17][0-9]{8}$' THEN '254' || substr(d, 2)
        WHEN d ~ '^[17][0-9]{8}$' THEN '254' || d
    END
    FROM (SELECT regexp_replace(coalesce(p_phone, ''), '^\s*\+|[\s().-]', '', 'g') AS d) AS n
    WHERE length(coalesce(p_phone, '')) <= 32
$$;

REVOKE ALL ON FUNCTION public.ledger_normal_ke_phone(text) FROM PUBLIC, anon, authenticated;
