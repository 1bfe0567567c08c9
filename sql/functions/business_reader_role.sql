-- public.business_reader_role: its current definition, applied again whenever this file changes (edit it
-- here). Its history, in numbered files: 0028_business.sql.

-- The caller's role in the business whose wallet the server named for this transaction (`ongea.wallet`),
-- or NULL: what the business policies below read. Security definer so the policies need no grant on the
-- members of others; it tells the caller only their own role.
CREATE OR REPLACE FUNCTION public.business_reader_role(p_wallet UUID) RETURNS TEXT
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT m.role FROM public.business_members m
    WHERE p_wallet = nullif(current_setting('ongea.wallet', true), '')::uuid
      AND m.business_id = p_wallet AND m.user_id = auth.uid() AND m.removed_at IS NULL
$$;

REVOKE ALL ON FUNCTION public.business_reader_role(uuid) FROM PUBLIC, anon, authenticated;
-- The policies call it as the user.
GRANT EXECUTE ON FUNCTION public.business_reader_role(uuid) TO authenticated;
