-- public.ledger_needs_pin: its current definition, applied again whenever this file changes (edit it here).
-- Its history, in numbered files: 0019_who_may_spend.sql, 0028_business.sql.

-- Whether confirming a payment of p_type and p_amount by this user needs the PIN (the profile as locked by
-- the caller): above the threshold, or past the allowance (count reached, or total plus this payment over).
-- A business wallet has no PIN of its own: every payment from it needs the evidence that only the business
-- functions leave, after the member's own gate.
CREATE OR REPLACE FUNCTION public.ledger_needs_pin(p_profile profiles, p_type TEXT, p_amount NUMERIC)
RETURNS BOOLEAN
LANGUAGE sql STABLE SET search_path = public, pg_temp AS $$
    SELECT p_type <> 'bank_to_mpesa'
           AND (EXISTS (SELECT 1 FROM businesses b WHERE b.id = p_profile.id)
                OR p_amount > r.pin_threshold
                OR p_profile.no_pin_count >= r.no_pin_count
                OR p_profile.no_pin_amount + p_amount > r.no_pin_amount)
    FROM ledger_rules r
$$;

REVOKE ALL ON FUNCTION public.ledger_needs_pin(profiles, text, numeric) FROM PUBLIC, anon, authenticated;
