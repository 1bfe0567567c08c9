-- public.ledger_gate_guard_profiles (0019_who_may_spend.sql, 0027_outside_review.sql): dropped, with its trigger.
-- Its rule, that a user role may not change the PIN, its attempts and lock, the no-PIN allowance, the wallet
-- or the holds of a profile, is kept by one mechanism: 0020's `ledger_guard_profile`
-- (functions/ledger_guard_profile.sql), which refuses every column but the preferences to every role that
-- does not own the table, whatever it was granted. It already fired first (`ledger_guard_columns` sorts
-- before `profiles_gate_guard`), so no refusal and no message changes.
DROP TRIGGER IF EXISTS profiles_gate_guard ON public.profiles;
DROP FUNCTION IF EXISTS public.ledger_gate_guard_profiles();
