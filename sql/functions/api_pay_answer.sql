-- public.api_pay_answer: its current definition, applied again whenever this file changes (edit it here). Its
-- history, in numbered files: 0026_api_keys.sql.

-- Stores an idempotent answer and returns it in the shape api_pay answers.
CREATE OR REPLACE FUNCTION public.api_pay_answer(p_user_id UUID, p_key TEXT, p_status INT, p_body JSONB)
RETURNS JSONB
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
BEGIN
    UPDATE idempotency_keys SET status = p_status, answer = p_body WHERE user_id = p_user_id AND key = p_key;
    RETURN jsonb_build_object('status', p_status, 'body', p_body, 'replayed', false);
END;
$$;

REVOKE ALL ON FUNCTION public.api_pay_answer(uuid, text, integer, jsonb) FROM PUBLIC, anon, authenticated;
