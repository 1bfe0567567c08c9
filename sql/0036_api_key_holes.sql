-- Holes the outside attack on API keys found (issue 23), each with its test in tests/attack_api/test_holes.py.
--
-- 1. MAX_KEYS (50 a user) was declared in the server and never enforced: a stolen user token, which needs no
--    PIN for a read key, made keys without end. api_key_create now counts the live keys under the profile's
--    lock (`too_many_keys`).
-- 2. An API payment left the evidence of a correct PIN for ledger_confirm, which took it as a PIN: the
--    payment reset the allowance of payments without a PIN (spec ledger.md, "Who may spend") and was recorded
--    `pin_verified`. A thief holding the phone's user token got five fresh payments without a PIN each time
--    the shop's till paid a supplier. api_pay now keeps the allowance as it was and records no PIN.
-- 3. The tables of sql/0026 came after sql/0020's guards: after a blanket `GRANT ALL` (the Supabase habit
--    0020 guards against) a signed-in user could TRUNCATE `idempotency_keys` (every retry of a payment then
--    pays again) and `api_key_events` (everyone's audit log). They get 0020's triggers now.
--
-- The definitions are in functions/api_key_create.sql, functions/api_pay.sql and the guards at the end of
-- functions/ledger_refuse_write.sql; this file keeps the record.

COMMENT ON TABLE public.idempotency_keys IS
    'Idempotency-Key -> request hash and answer of an API payment, kept 24 hours (pruned by the sweeper)';
