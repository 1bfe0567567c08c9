-- public.voice_turn_store: its current definition, applied again whenever this file changes (edit it
-- here). New with issue 19 (a turn in fewer round trips); no numbered file defined it before.
--
-- One turn's store, sent by the server in the same message as the turn's COMMIT
-- (voice_server/conversation/driver.py), so a turn's dialogue state and its record in `voice_session_turns`
-- cost one round trip, in the turn's own transaction: a turn that happened always has its record.
-- `p_turn` = {"session": the voice_sessions id, "at": the turn's time, "state": the dialogue state (null:
-- stored already, as when the turn ended the session), "language", "record": the turn's row of
-- voice_session_turns without its seq (null: nothing to keep, as for a greeting or a tick that told
-- nothing)}. The caller holds the session row's lock (FOR UPDATE at the turn's start), so two turns never
-- take the same seq. Only the server calls it: the user roles have no EXECUTE (and, as an invoker's
-- function, no row of either table to write anyway).
CREATE OR REPLACE FUNCTION public.voice_turn_store(p_turn JSONB) RETURNS VOID
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    v_session UUID := (p_turn->>'session')::uuid;
    v_record JSONB := p_turn->'record';
    v_owner RECORD;
BEGIN
    IF jsonb_typeof(p_turn->'state') = 'object' THEN
        UPDATE voice_sessions
        SET dialogue_state = p_turn->'state', language = p_turn->>'language', turns = turns + 1,
            last_turn_at = (p_turn->>'at')::timestamptz
        WHERE id = v_session;
    END IF;
    IF jsonb_typeof(v_record) = 'object' THEN
        SELECT s.session_id, s.user_id INTO v_owner FROM voice_sessions s WHERE s.id = v_session;
        INSERT INTO voice_session_turns (voice_session_id, session_id, user_id, seq, input_kind, heard,
                                         asr_confidence, tap, answered, tool_calls, proposal, outcome, asked,
                                         rejected, committed, balance, language, channel, tool_name,
                                         tool_parameters, cancelled)
        VALUES (v_session, v_owner.session_id, v_owner.user_id,
                coalesce((SELECT max(t.seq) FROM voice_session_turns t WHERE t.voice_session_id = v_session), 0)
                    + 1,
                v_record->>'input_kind', v_record->>'heard', (v_record->>'asr_confidence')::numeric,
                v_record->>'tap',
                ARRAY(SELECT jsonb_array_elements_text(coalesce(v_record->'answered', '[]'::jsonb))),
                coalesce(v_record->'tool_calls', '[]'::jsonb), nullif(v_record->'proposal', 'null'::jsonb),
                v_record->>'outcome', v_record->>'asked', v_record->>'rejected',
                nullif(v_record->'committed', 'null'::jsonb), (v_record->>'balance')::numeric,
                v_record->>'language', v_record->>'channel', v_record->>'tool_name',
                nullif(v_record->'tool_parameters', 'null'::jsonb), coalesce((v_record->>'cancelled')::boolean, false));
    END IF;
END;
$$;
REVOKE ALL ON FUNCTION public.voice_turn_store(JSONB) FROM PUBLIC, anon, authenticated;
