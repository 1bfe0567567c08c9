-- public.spending: its current definition, applied again whenever this file changes (edit it
-- here). Its history, in numbered files: 0023_plans.sql.

-- ---------------------------------------------------------------------------------------------------------
-- Spending: the payments that reached processing and did not fail. Refunds (a failed payout), top-ups
-- (mpesa_transactions) and bank_to_mpesa (money in) are not spending. Security invoker: under a user's
-- row level security it holds only their rows.
-- ---------------------------------------------------------------------------------------------------------
CREATE OR REPLACE VIEW public.spending WITH (security_invoker = true) AS
SELECT t.id, t.user_id, t.type, t.amount, t.fee, t.confirmed_at AS spent_at,
       (t.confirmed_at AT TIME ZONE 'Africa/Nairobi')::date AS nairobi_day,
       t.phone, t.till, t.paybill, t.account, t.agent, t.store, t.bank_code,
       CASE t.type
           WHEN 'send_phone' THEN 'phone:' || t.phone
           WHEN 'buy_goods_pochi' THEN 'phone:' || t.phone
           WHEN 'buy_goods_till' THEN 'till:' || t.till
           WHEN 'paybill' THEN 'paybill:' || t.paybill
           WHEN 'withdraw' THEN 'agent:' || t.agent
           ELSE 'bank:' || t.bank_code
       END AS recipient
FROM public.transactions t
WHERE t.status IN ('processing', 'completed') AND t.type <> 'bank_to_mpesa' AND t.confirmed_at IS NOT NULL;

REVOKE ALL ON public.spending FROM PUBLIC, anon, authenticated;
GRANT SELECT ON public.spending TO authenticated;
