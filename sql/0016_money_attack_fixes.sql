-- Fixes from the outside attack on the money path (tests/attack_money).
--
-- Pull Transactions keeps looking, for the 48 hours it can see, for the deposit of an expected deposit that
-- expired with nothing recorded for it (a confirmation missed around the deadline must not vanish): the
-- reconciler reads expired expected deposits of the last 48 hours every round, by this index.
CREATE INDEX idx_c2b_expected_recently_expired ON public.c2b_expected_deposits (created_at)
    WHERE status = 'expired';
