-- The row level security policies of public.profiles, applied again whenever this file changes (edit them
-- here). Whether row level security is on is the table's, in the numbered files.

-- From 0002_founding_schema.sql.
DROP POLICY IF EXISTS "Users can update own profile" ON public.profiles;
CREATE POLICY "Users can update own profile" ON public.profiles FOR UPDATE USING (auth.uid() = id);

-- From 0002_founding_schema.sql.
DROP POLICY IF EXISTS "Users can view own profile" ON public.profiles;
CREATE POLICY "Users can view own profile" ON public.profiles FOR SELECT USING (auth.uid() = id);

-- From 0028_business.sql.
DROP POLICY IF EXISTS "Members read the business wallet named" ON public.profiles;
CREATE POLICY "Members read the business wallet named" ON public.profiles FOR SELECT
    USING (business_reader_role(id) IS NOT NULL);
