-- public.ledger_gate_guard_tables (0019_who_may_spend.sql): dropped, with its four triggers. Its rule, that a
-- user role may not write or truncate `ledger_rules` and `ledger_pin_evidence`, is kept by one mechanism:
-- 0020's `ledger_refuse_write` (functions/ledger_refuse_write.sql), whose `ledger_guard_writes` and
-- `ledger_guard_truncate` refuse it to every role that does not own the table. They already fired first (a
-- statement trigger before row triggers; `ledger_guard_truncate` sorts before `ledger_*_truncate_guard`), so
-- no refusal and no message changes.
DROP TRIGGER IF EXISTS ledger_pin_evidence_guard ON public.ledger_pin_evidence;
DROP TRIGGER IF EXISTS ledger_pin_evidence_truncate_guard ON public.ledger_pin_evidence;
DROP TRIGGER IF EXISTS ledger_rules_guard ON public.ledger_rules;
DROP TRIGGER IF EXISTS ledger_rules_truncate_guard ON public.ledger_rules;
DROP FUNCTION IF EXISTS public.ledger_gate_guard_tables();
