-- public.business_bind_invitations: its current definition, applied again whenever this file changes (edit it
-- here). Its history, in numbered files: 0028_business.sql.

-- Someone invited by phone before they had an account is a member from the moment their wallet exists.
CREATE OR REPLACE FUNCTION public.business_bind_invitations() RETURNS TRIGGER
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    UPDATE public.business_members SET user_id = NEW.id, updated_at = now()
    WHERE phone = NEW.phone_number AND user_id IS NULL AND removed_at IS NULL;
    RETURN NULL;
END;
$$;

REVOKE ALL ON FUNCTION public.business_bind_invitations() FROM PUBLIC, anon, authenticated;

-- Where it runs.
CREATE OR REPLACE TRIGGER business_bind_invitations AFTER INSERT ON public.profiles
    FOR EACH ROW EXECUTE FUNCTION public.business_bind_invitations();
