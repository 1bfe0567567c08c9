-- public.record_session_opening: its current definition, applied again whenever this file changes (edit it
-- here). Its history, in numbered files: 0025_transcript_export.sql.

CREATE OR REPLACE FUNCTION public.record_session_opening() RETURNS TRIGGER
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    INSERT INTO voice_session_openings (voice_session_id, user_id, at, wallet_balance, plan, pin_set, language,
                                        contacts)
    SELECT NEW.id, NEW.user_id, coalesce(NEW.created_at, now()), coalesce(p.wallet_balance, 0),
           (SELECT f.plan FROM plan_features(NEW.user_id, coalesce(NEW.created_at, now())) f),
           p.pin_hash IS NOT NULL, NEW.language,
           coalesce((SELECT jsonb_agg(jsonb_build_object('name', c.name, 'phone_number', c.phone_number,
                                                         'nickname', c.nickname)
                                      ORDER BY c.favorite DESC NULLS LAST, c.name, c.id)
                     FROM contacts c WHERE c.user_id = NEW.user_id), '[]'::jsonb)
    FROM profiles p WHERE p.id = NEW.user_id
    ON CONFLICT (voice_session_id) DO NOTHING;
    RETURN NEW;
END
$$;

REVOKE ALL ON FUNCTION public.record_session_opening() FROM PUBLIC, anon, authenticated;

-- Where it runs.
CREATE OR REPLACE TRIGGER voice_sessions_record_opening AFTER INSERT ON public.voice_sessions
    FOR EACH ROW EXECUTE FUNCTION public.record_session_opening();
