-- public.business_payer: its current definition, applied again whenever this file changes (edit it
-- here). Its history, in numbered files: 0028_business.sql.

-- The gate of a member paying from the business (under their membership's row lock, which it takes): an
-- active member whose role pays, the owner's plan with multi_user, a type a business pays, and for a
-- spender their daily limit. Returns the membership.
CREATE OR REPLACE FUNCTION public.business_payer(p_business UUID, p_member UUID, p_type TEXT,
    p_amount NUMERIC, p_now TIMESTAMPTZ, p_except UUID) RETURNS public.business_members
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    v_m business_members%ROWTYPE := business_member_active(p_business, p_member);
    v_spent NUMERIC;
BEGIN
    IF v_m.id IS NULL THEN
        PERFORM ledger_fail('not_a_member', 'you are not a member of this business');
    END IF;
    IF v_m.role = 'viewer' THEN
        PERFORM ledger_fail('viewer_cannot_pay', 'a viewer reads the business wallet and cannot pay from it');
    END IF;
    IF NOT business_plan_allows(p_business, p_now) THEN
        PERFORM ledger_fail('plan_required', 'business accounts come with the Business plan');
    END IF;
    IF p_type IN ('withdraw', 'bank_to_mpesa') THEN
        PERFORM ledger_fail('not_for_business', 'a business wallet pays people, tills and paybills');
    END IF;
    IF v_m.role = 'spender' THEN
        v_spent := business_spent_today(p_business, p_member, p_now, p_except);
        IF v_spent + coalesce(p_amount, 0) > v_m.daily_limit THEN
            PERFORM ledger_fail('spender_daily_limit',
                format('you may pay KES %s a day from this business; KES %s used today', v_m.daily_limit, v_spent));
        END IF;
    END IF;
    RETURN v_m;
END;
$$;

REVOKE ALL ON FUNCTION public.business_payer(uuid, uuid, text, numeric, timestamp with time zone, uuid) FROM PUBLIC, anon, authenticated;
