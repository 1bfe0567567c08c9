-- public.business_result: its current definition, applied again whenever this file changes (edit it
-- here). Its history, in numbered files: 0028_business.sql.

-- What a business confirmation or decision answers: the transaction and the business it is from.
CREATE OR REPLACE FUNCTION public.business_result(p_tx transactions, p_outcome TEXT) RETURNS JSONB
LANGUAGE sql STABLE SET search_path = public, pg_temp AS $$
    SELECT jsonb_build_object(
        'outcome', p_outcome, 'transaction_id', p_tx.id, 'version', p_tx.version, 'status', p_tx.status,
        'type', p_tx.type, 'amount', p_tx.amount::text, 'fee', p_tx.fee::text,
        'voice_verified', p_tx.voice_verified, 'pin_verified', p_tx.pin_verified,
        'wallet_balance', p.wallet_balance::text, 'available', (p.wallet_balance - p.held_balance)::text,
        'confirmed_at', p_tx.confirmed_at, 'auto_topup_id', NULL,
        'approval_state', p_tx.approval_state, 'approval_expires_at', p_tx.expires_at,
        'business_id', b.id, 'business_name', b.display_name)
    FROM profiles p JOIN businesses b ON b.id = p.id
    WHERE p.id = p_tx.user_id
$$;

REVOKE ALL ON FUNCTION public.business_result(transactions, text) FROM PUBLIC, anon, authenticated;
