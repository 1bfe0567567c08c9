-- public.business_decide: its current definition, applied again whenever this file changes (edit it
-- here). Its history, in numbered files: 0028_business.sql.

-- An owner or admin approves or rejects a payment waiting for approval, with the evidence of their PIN
-- checked in this database transaction (ledger_pin_attempt). Exactly once, whatever races it (another
-- decision, the sweeper's expiry, the maker's removal): the wallet's profile and the transaction are locked
-- (the ledger's order) and the decision is taken only while the payment is `awaiting` and `pending` and its
-- 24 hours have not run out. Nobody decides their own payment. Answers JSON: `outcome` approved | rejected
-- | expired | refused (the ledger refused it at approval: a limit), or a refusal raised (OPL01).
CREATE OR REPLACE FUNCTION public.business_decide(p_transaction_id UUID, p_by UUID, p_approve BOOLEAN,
    p_now TIMESTAMPTZ DEFAULT NULL) RETURNS JSONB
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    v_now TIMESTAMPTZ := coalesce(p_now, now());
    v_business UUID;
    v_tx transactions%ROWTYPE;
    v_result JSONB;
BEGIN
    SELECT t.user_id INTO v_business FROM transactions t
    WHERE t.id = p_transaction_id AND t.approval_state IS NOT NULL;
    IF NOT FOUND THEN
        PERFORM ledger_fail('not_found', 'no such payment waiting for approval');
    END IF;
    PERFORM business_manager(v_business, p_by, v_now);  -- (share-locks the decider's membership)
    -- The maker's membership before the wallet (business_confirm's order): their right to pay is asked again.
    PERFORM business_member_active(v_business, (SELECT made_by FROM transactions WHERE id = p_transaction_id));
    PERFORM 1 FROM profiles WHERE id = v_business FOR UPDATE;
    SELECT * INTO v_tx FROM transactions WHERE id = p_transaction_id FOR UPDATE;
    IF v_tx.made_by = p_by THEN
        PERFORM ledger_fail('own_payment', 'nobody approves their own payment');
    END IF;
    IF v_tx.approval_state <> 'awaiting' OR v_tx.status <> 'pending' THEN
        PERFORM ledger_fail('already_decided', format('this payment was already %s', v_tx.approval_state));
    END IF;
    IF NOT ledger_take_pin_evidence(p_by) THEN
        PERFORM ledger_fail('pin_required', 'approving or rejecting a payment needs your PIN');
    END IF;
    IF v_now >= v_tx.expires_at THEN
        PERFORM ledger_void(v_tx, 'expired');  -- (the trigger marks it expired and tells the maker)
        SELECT * INTO v_tx FROM transactions WHERE id = p_transaction_id;
        RETURN business_result(v_tx, 'expired');
    END IF;
    IF NOT p_approve THEN
        UPDATE transactions
        SET approval_state = 'rejected', approval_decided_by = p_by, approval_decided_at = v_now
        WHERE id = v_tx.id
        RETURNING * INTO v_tx;
        v_tx := ledger_void(v_tx, 'rejected');
        INSERT INTO payout_receipts (transaction_id, user_id, status)
        VALUES (v_tx.id, v_tx.made_by, 'rejected')
        ON CONFLICT (transaction_id) DO NOTHING;
        RETURN business_result(v_tx, 'rejected');
    END IF;
    BEGIN
        PERFORM business_payer(v_business, v_tx.made_by, v_tx.type, v_tx.amount, v_now, v_tx.id);
    EXCEPTION WHEN SQLSTATE 'OPL01' THEN
        UPDATE transactions
        SET approval_state = 'refused', approval_decided_by = p_by, approval_decided_at = v_now
        WHERE id = v_tx.id
        RETURNING * INTO v_tx;
        v_tx := ledger_void(v_tx, SQLERRM);
        RETURN business_result(v_tx, 'refused')
               || jsonb_build_object('error', SQLERRM, 'message', 'its maker may no longer make this payment');
    END;
    UPDATE transactions
    SET approval_state = 'approved', approved_by = p_by, approval_decided_by = p_by, approval_decided_at = v_now
    WHERE id = v_tx.id;
    INSERT INTO ledger_pin_evidence (user_id, xact) VALUES (v_business, pg_current_xact_id())
    ON CONFLICT (user_id) DO UPDATE SET xact = excluded.xact;
    v_result := ledger_confirm(v_tx.id, v_business, v_tx.version, v_tx.voice_verified, v_now);
    DELETE FROM ledger_pin_evidence WHERE user_id = v_business;
    IF v_result ? 'error' THEN
        UPDATE transactions SET approval_state = 'refused' WHERE id = v_tx.id;
    END IF;
    SELECT * INTO v_tx FROM transactions WHERE id = p_transaction_id;
    RETURN business_result(v_tx, CASE WHEN v_result ? 'error' THEN 'refused' ELSE 'approved' END)
           || CASE WHEN v_result ? 'error'
                   THEN jsonb_build_object('error', v_result ->> 'error', 'message', v_result ->> 'message')
                   ELSE '{}'::jsonb END;
END;
$$;

REVOKE ALL ON FUNCTION public.business_decide(uuid, uuid, boolean, timestamp with time zone) FROM PUBLIC, anon, authenticated;
