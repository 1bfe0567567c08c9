-- public.business_stamp: its current definition, applied again whenever this file changes (edit it
-- here). Its history, in numbered files: 0028_business.sql.

-- After a business proposal or revision: who makes it, whether the member's confirmation will need their
-- PIN (their own gate), and whether it will wait for approval. The member's profile is read, not locked.
CREATE OR REPLACE FUNCTION public.business_stamp(p_tx transactions, p_member business_members)
RETURNS public.transactions
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    v_person profiles%ROWTYPE;
    v_needs BOOLEAN;
    v_row transactions%ROWTYPE;
BEGIN
    SELECT * INTO v_person FROM profiles WHERE id = p_member.user_id;
    v_needs := coalesce(ledger_needs_pin(v_person, p_tx.type, p_tx.amount), false);
    IF v_needs AND v_person.pin_hash IS NULL THEN
        PERFORM ledger_fail('pin_not_set', 'this payment needs a PIN, and none is set');
    END IF;
    UPDATE transactions
    SET made_by = p_member.user_id, needs_pin = v_needs,
        needs_approval = (p_member.role = 'spender' AND p_tx.amount > p_member.approval_amount)
    WHERE id = p_tx.id
    RETURNING * INTO v_row;
    RETURN v_row;
END;
$$;

REVOKE ALL ON FUNCTION public.business_stamp(transactions, business_members) FROM PUBLIC, anon, authenticated;
