-- public.business_confirm: its current definition, applied again whenever this file changes (edit it
-- here). Its history, in numbered files: 0028_business.sql.

-- A member confirms their proposal from the business wallet. Locks: the member's profile, their membership,
-- then (ledger order) the wallet's profile and the transaction. The member's gate (lock, PIN, allowance,
-- daily limit) is decided here; a payment above a spender's approval amount then waits for approval (the
-- hold stays, 24 hours), anything else is posted by ledger_confirm with the evidence this function leaves.
-- Idempotent like ledger_confirm; a payment already waiting answers `awaiting_approval` again.
CREATE OR REPLACE FUNCTION public.business_confirm(
    p_transaction_id UUID, p_member UUID, p_version INT, p_voice_verified BOOLEAN, p_now TIMESTAMPTZ DEFAULT NULL
) RETURNS JSONB
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    v_now TIMESTAMPTZ := coalesce(p_now, now());
    v_person profiles%ROWTYPE;
    v_business UUID;
    v_m business_members%ROWTYPE;
    v_tx transactions%ROWTYPE;
    v_pin BOOLEAN;
    v_result JSONB;
BEGIN
    SELECT * INTO v_person FROM profiles WHERE id = p_member FOR UPDATE;
    SELECT t.user_id INTO v_business FROM transactions t
    WHERE t.id = p_transaction_id AND t.made_by = p_member
      AND EXISTS (SELECT 1 FROM businesses b WHERE b.id = t.user_id);
    IF v_person.id IS NULL OR v_business IS NULL THEN
        PERFORM ledger_fail('not_found', 'no such proposal');
    END IF;
    v_m := business_member_active(v_business, p_member);
    PERFORM 1 FROM profiles WHERE id = v_business FOR UPDATE;
    SELECT * INTO v_tx FROM transactions WHERE id = p_transaction_id FOR UPDATE;
    IF v_m.id IS NULL THEN
        IF v_tx.status = 'pending' THEN
            PERFORM ledger_void(v_tx, 'member_removed');
        END IF;
        RETURN jsonb_build_object('error', 'not_a_member', 'message', 'you are not a member of this business');
    END IF;
    IF v_tx.approval_state IS NOT NULL OR v_tx.status <> 'pending' OR p_version IS DISTINCT FROM v_tx.version
       OR v_now >= v_tx.expires_at THEN
        IF v_tx.approval_state = 'awaiting' THEN
            IF p_version IS DISTINCT FROM v_tx.version THEN
                PERFORM ledger_fail('stale_version', 'that version of the proposal was replaced by a correction');
            END IF;
            RETURN business_result(v_tx, 'awaiting_approval');
        END IF;
        IF v_tx.approval_state IN ('rejected', 'expired', 'cancelled', 'refused') THEN
            PERFORM ledger_fail(CASE WHEN v_tx.approval_state = 'expired' THEN 'expired' ELSE 'cancelled' END,
                                'the payment was ' || v_tx.approval_state);
        END IF;
        -- Confirmed before, cancelled, stale or past its time: the ledger's own answer (no money moves).
        RETURN ledger_confirm(p_transaction_id, v_business, p_version, p_voice_verified, v_now)
               || jsonb_build_object('business_id', v_business);
    END IF;

    IF ledger_pin_locked(v_person, v_now) THEN
        PERFORM ledger_void(v_tx, 'pin_locked');
        RETURN jsonb_build_object('error', 'pin_locked', 'message', 'too many wrong PINs: payments are locked for now');
    END IF;
    BEGIN
        v_m := business_payer(v_business, p_member, v_tx.type, v_tx.amount, v_now, v_tx.id);
    EXCEPTION WHEN SQLSTATE 'OPL01' THEN
        PERFORM ledger_void(v_tx, SQLERRM);
        RETURN jsonb_build_object('error', SQLERRM, 'message', 'this payment is not allowed from the business');
    END;
    v_pin := ledger_take_pin_evidence(p_member);
    IF NOT v_pin AND ledger_needs_pin(v_person, v_tx.type, v_tx.amount) THEN
        IF v_person.pin_hash IS NULL THEN
            PERFORM ledger_void(v_tx, 'pin_not_set');
            RETURN jsonb_build_object('error', 'pin_not_set', 'message', 'this payment needs a PIN, and none is set');
        END IF;
        PERFORM ledger_fail('pin_required', 'this payment needs the PIN: finish it in the app');
    END IF;
    -- The member's allowance without a PIN, as ledger_confirm counts a person's own.
    IF v_pin THEN
        UPDATE profiles SET no_pin_count = 0, no_pin_amount = 0 WHERE id = p_member;
    ELSE
        UPDATE profiles SET no_pin_count = no_pin_count + 1, no_pin_amount = no_pin_amount + v_tx.amount
        WHERE id = p_member;
    END IF;

    IF v_m.role = 'spender' AND v_tx.amount > v_m.approval_amount THEN
        UPDATE transactions
        SET approval_state = 'awaiting', approval_requested_at = v_now, needs_approval = true,
            expires_at = v_now + interval '24 hours', session_id = NULL,
            voice_verified = coalesce(p_voice_verified, false), pin_verified = v_pin
        WHERE id = v_tx.id
        RETURNING * INTO v_tx;
        RETURN business_result(v_tx, 'awaiting_approval');
    END IF;

    INSERT INTO ledger_pin_evidence (user_id, xact) VALUES (v_business, pg_current_xact_id())
    ON CONFLICT (user_id) DO UPDATE SET xact = excluded.xact;
    v_result := ledger_confirm(p_transaction_id, v_business, p_version, p_voice_verified, v_now);
    DELETE FROM ledger_pin_evidence WHERE user_id = v_business;
    IF NOT v_result ? 'error' THEN
        UPDATE transactions SET pin_verified = v_pin, confirm_result = confirm_result || jsonb_build_object(
            'pin_verified', v_pin, 'business_id', v_business)
        WHERE id = v_tx.id;
        v_result := v_result || jsonb_build_object('pin_verified', v_pin);
    END IF;
    RETURN v_result || jsonb_build_object('business_id', v_business,
                                          'business_name', (SELECT display_name FROM businesses WHERE id = v_business));
END;
$$;

REVOKE ALL ON FUNCTION public.business_confirm(uuid, uuid, integer, boolean, timestamp with time zone) FROM PUBLIC, anon, authenticated;
