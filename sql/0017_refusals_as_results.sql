-- Refusals as results: ledger_propose, ledger_revise, ledger_confirm and ledger_cancel refuse by raising
-- (SQLSTATE OPL01, or a constraint's error), which aborts the caller's transaction. A voice turn calls them
-- inside its own transaction (the session row locked, the dialogue state stored in the same commit), so each
-- call needed a SAVEPOINT and a RELEASE around it: two more round trips a turn. These variants catch the
-- refusal inside the database (the exception block is the same subtransaction the savepoint was, without
-- the round trips) and return it as columns; the functions they call are unchanged.
--
-- Each returns refusal_state (the SQLSTATE), refusal (the error's message: the ledger's code for OPL01)
-- and refusal_detail (its DETAIL, or NULL), all NULL when the call went through; then the function's own
-- result (`tx`, a transactions row, or `result`, the JSON of ledger_confirm). Only refusals are caught:
-- OPL01 and the errors the Python ledger turns into a refusal (check, foreign key and unique violations,
-- data exceptions); anything else (a deadlock, a lost connection) still aborts the transaction.

CREATE FUNCTION public.ledger_propose_or_refusal(
    p_user_id UUID, p_type TEXT, p_amount NUMERIC,
    p_phone TEXT, p_till TEXT, p_paybill TEXT, p_account TEXT, p_agent TEXT, p_store TEXT, p_bank_code TEXT,
    p_confidence_score INT, p_voice_command_text TEXT, p_session_id TEXT,
    p_now TIMESTAMPTZ, p_ttl_seconds INT,
    OUT refusal_state TEXT, OUT refusal TEXT, OUT refusal_detail TEXT, OUT tx public.transactions)
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
BEGIN
    tx := ledger_propose(p_user_id, p_type, p_amount, p_phone, p_till, p_paybill, p_account, p_agent, p_store,
                         p_bank_code, p_confidence_score, p_voice_command_text, p_session_id, p_now,
                         p_ttl_seconds);
EXCEPTION WHEN SQLSTATE 'OPL01' OR check_violation OR foreign_key_violation OR unique_violation
               OR data_exception THEN
    GET STACKED DIAGNOSTICS refusal_state = RETURNED_SQLSTATE, refusal = MESSAGE_TEXT,
                            refusal_detail = PG_EXCEPTION_DETAIL;
    refusal_detail := nullif(refusal_detail, '');
    tx := NULL;
END;
$$;

CREATE FUNCTION public.ledger_revise_or_refusal(
    p_transaction_id UUID, p_user_id UUID, p_type TEXT, p_amount NUMERIC,
    p_phone TEXT, p_till TEXT, p_paybill TEXT, p_account TEXT, p_agent TEXT, p_store TEXT, p_bank_code TEXT,
    p_confidence_score INT, p_voice_command_text TEXT,
    p_now TIMESTAMPTZ, p_ttl_seconds INT,
    OUT refusal_state TEXT, OUT refusal TEXT, OUT refusal_detail TEXT, OUT tx public.transactions)
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
BEGIN
    tx := ledger_revise(p_transaction_id, p_user_id, p_type, p_amount, p_phone, p_till, p_paybill, p_account,
                        p_agent, p_store, p_bank_code, p_confidence_score, p_voice_command_text, p_now,
                        p_ttl_seconds);
EXCEPTION WHEN SQLSTATE 'OPL01' OR check_violation OR foreign_key_violation OR unique_violation
               OR data_exception THEN
    GET STACKED DIAGNOSTICS refusal_state = RETURNED_SQLSTATE, refusal = MESSAGE_TEXT,
                            refusal_detail = PG_EXCEPTION_DETAIL;
    refusal_detail := nullif(refusal_detail, '');
    tx := NULL;
END;
$$;

CREATE FUNCTION public.ledger_confirm_or_refusal(
    p_transaction_id UUID, p_user_id UUID, p_version INT, p_voice_verified BOOLEAN, p_now TIMESTAMPTZ,
    OUT refusal_state TEXT, OUT refusal TEXT, OUT refusal_detail TEXT, OUT result JSONB)
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
BEGIN
    result := ledger_confirm(p_transaction_id, p_user_id, p_version, p_voice_verified, p_now);
EXCEPTION WHEN SQLSTATE 'OPL01' OR check_violation OR foreign_key_violation OR unique_violation
               OR data_exception THEN
    GET STACKED DIAGNOSTICS refusal_state = RETURNED_SQLSTATE, refusal = MESSAGE_TEXT,
                            refusal_detail = PG_EXCEPTION_DETAIL;
    refusal_detail := nullif(refusal_detail, '');
    result := NULL;
END;
$$;

CREATE FUNCTION public.ledger_cancel_or_refusal(p_transaction_id UUID, p_user_id UUID, p_reason TEXT,
    OUT refusal_state TEXT, OUT refusal TEXT, OUT refusal_detail TEXT, OUT tx public.transactions)
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
BEGIN
    tx := ledger_cancel(p_transaction_id, p_user_id, p_reason);
EXCEPTION WHEN SQLSTATE 'OPL01' OR check_violation OR foreign_key_violation OR unique_violation
               OR data_exception THEN
    GET STACKED DIAGNOSTICS refusal_state = RETURNED_SQLSTATE, refusal = MESSAGE_TEXT,
                            refusal_detail = PG_EXCEPTION_DETAIL;
    refusal_detail := nullif(refusal_detail, '');
    tx := NULL;
END;
$$;

-- Server side only, like the functions they wrap.
DO $$
DECLARE
    f TEXT;
BEGIN
    FOREACH f IN ARRAY ARRAY[
        'public.ledger_propose_or_refusal(UUID, TEXT, NUMERIC, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, INT, TEXT, TEXT, TIMESTAMPTZ, INT)',
        'public.ledger_revise_or_refusal(UUID, UUID, TEXT, NUMERIC, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, INT, TEXT, TIMESTAMPTZ, INT)',
        'public.ledger_confirm_or_refusal(UUID, UUID, INT, BOOLEAN, TIMESTAMPTZ)',
        'public.ledger_cancel_or_refusal(UUID, UUID, TEXT)']
    LOOP
        EXECUTE format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC', f);
        IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'authenticated') THEN
            EXECUTE format('REVOKE EXECUTE ON FUNCTION %s FROM authenticated', f);
        END IF;
        IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'anon') THEN
            EXECUTE format('REVOKE EXECUTE ON FUNCTION %s FROM anon', f);
        END IF;
    END LOOP;
END
$$;
