-- Supabase compatibility for plain PostgreSQL.
-- On Supabase the `auth` schema, `auth.users`, `auth.uid()` and the `authenticated` role already exist and
-- belong to Supabase: every statement here only creates what is missing, so this file is a no-op there.

CREATE SCHEMA IF NOT EXISTS auth;

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'authenticated') THEN
        BEGIN
            CREATE ROLE authenticated NOLOGIN NOINHERIT;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;  -- another database of this cluster created it first
        END;
    END IF;
END
$$;

DO $$
BEGIN
    IF to_regclass('auth.users') IS NULL THEN
        -- The subset of Supabase's auth.users that this product reads and writes.
        CREATE TABLE auth.users (
            id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
            phone TEXT UNIQUE,
            email TEXT UNIQUE,
            raw_user_meta_data JSONB DEFAULT '{}'::jsonb,
            created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
            updated_at TIMESTAMP WITH TIME ZONE DEFAULT NOW()
        );
        GRANT USAGE ON SCHEMA auth TO authenticated;
    END IF;

    IF NOT EXISTS (
        SELECT 1 FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname = 'auth' AND p.proname = 'uid'
    ) THEN
        -- Supabase's definition: the `sub` claim of the request's JWT claims.
        CREATE FUNCTION auth.uid() RETURNS UUID
        LANGUAGE sql STABLE
        AS $f$
            SELECT coalesce(
                nullif(current_setting('request.jwt.claim.sub', true), ''),
                (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')
            )::uuid
        $f$;
        GRANT EXECUTE ON FUNCTION auth.uid() TO authenticated;
    END IF;
END
$$;
