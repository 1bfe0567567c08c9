-- Row level security as the earlier schema had it: every founding table present, own rows only.
DO $$
DECLARE t TEXT;
BEGIN
    FOREACH t IN ARRAY ARRAY['profiles', 'transactions', 'voice_sessions', 'contacts'] LOOP
        IF to_regclass('public.' || t) IS NOT NULL THEN
            EXECUTE format('ALTER TABLE public.%I ENABLE ROW LEVEL SECURITY', t);
            EXECUTE format(
                'CREATE POLICY "own rows" ON public.%I USING (%s = nullif(current_setting(''request.jwt.claim.sub'', true), '''')::uuid)',
                t, CASE WHEN t = 'profiles' THEN 'id' ELSE 'user_id' END);
        END IF;
    END LOOP;
END
$$;
