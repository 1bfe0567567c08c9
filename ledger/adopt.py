"""Adopting a database made from the earlier (pre-migration) schema: the read-only plan, then `--apply`.

`plan_adoption` looks at what is there (which founding tables, row level security, a Supabase-shaped
`auth` schema, the columns the earlier `transactions` lacks) and lists, never deletes, the rows that break a
check the new schema enforces, each with what a person must decide. It changes nothing: it runs in a read-only
transaction, so it is safe on a live database. `apply_adoption` (below) brings the database to what a fresh
one has after `migrate`, through `migrate()` itself, keeping every row.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import Decimal

import asyncpg

from ledger.faults import FaultPoint, fault_point
from ledger.migrate import APPLY_STEPS, FOUNDING_TABLES, migrate
from ledger.models import LedgerError
from ledger.phones import normalize_ke_phone

# What sql/0002 gives `transactions` that the earlier table lacks.
TRANSACTION_COLUMNS = {
    "error_message": "TEXT",
    "retry_count": "INTEGER DEFAULT 0",
    "completed_at": "TIMESTAMP WITH TIME ZONE",
}
TRANSACTION_TYPES = (
    "send_phone",
    "buy_goods_pochi",
    "buy_goods_till",
    "paybill",
    "withdraw",
    "bank_to_mpesa",
    "mpesa_to_bank",
)
TRANSACTION_STATUSES = ("pending", "processing", "completed", "failed", "cancelled")
MAX_AMOUNT = Decimal(999999)


class AdoptionError(RuntimeError):
    """The database is not one the adoption recognises; nothing was changed."""


@dataclass(frozen=True)
class BrokenRow:
    """A row that breaks a check of the new schema: listed for a person, never deleted or changed by us."""

    table: str
    row_id: str
    check: str
    value: str
    decision: str
    # A unique index cannot be added NOT VALID: such a row must be fixed before `--apply` starts.
    blocking: bool = False


@dataclass
class AdoptionPlan:
    tables: list[str]
    missing_tables: list[str]
    rls: dict[str, bool]
    supabase_auth: bool
    missing_columns: list[str]
    already_migrated: bool
    broken: list[BrokenRow] = field(default_factory=list)
    policies: list[str] = field(default_factory=list)
    open_payments: int = 0
    # None before `--apply` started; else the steps done (all of APPLY_STEPS once finished).
    steps_done: list[str] | None = None
    still_not_valid: list[str] = field(default_factory=list)

    @property
    def backups(self) -> list[str]:
        """Every founding table found: adoption rebuilds each, so each is backed up first."""
        return list(self.tables)

    def found(self) -> dict[str, object]:
        """What the backup step records, so a rerun knows the earlier database after its tables moved."""
        return {
            "tables": self.tables,
            "missing_tables": self.missing_tables,
            "rls": self.rls,
            "supabase_auth": self.supabase_auth,
            "missing_columns": self.missing_columns,
            "policies": self.policies,
        }

    def _will(self) -> list[str]:
        """What `--apply` will do, for a plan before it finished."""
        will: list[str] = []
        will.append(
            "  auth schema: "
            + (
                "present (Supabase-shaped), kept as it is; a user id it lacks is listed, not created"
                if self.supabase_auth
                else "absent, will be created, with an auth.users row for every user id of the earlier tables"
            )
        )
        will.append(f"  will back up (into schema adopt_backup): {', '.join(self.backups) or 'nothing'}")
        will.append(
            "  will set those tables aside, run every migration as on a fresh database (recorded in "
            "schema_migrations), then copy every row back unchanged"
        )
        will.append(
            f"  will add columns: {', '.join(self.missing_columns) or 'none'} (and those of later migrations)"
        )
        will.append(
            f"  will create tables: {', '.join(self.missing_tables) or 'none'} "
            "(and those of later migrations)"
        )
        if self.policies:
            will.append(f"  earlier policies, replaced by the migrations' own: {', '.join(self.policies)}")
        will.append(
            "  will add the checks and foreign keys of the copied tables NOT VALID, and validate each once "
            "no row breaks it (rerun `migrate --adopt --apply` after fixing the listed rows)"
        )
        will.append(
            "  will mark the earlier transactions, balance rows and top-ups `adopted` (no money moves "
            "through the ledger for them) and give every wallet an opening balance_history row equal to "
            "its balance"
        )
        return will

    def render(self) -> str:
        lines = ["Adoption plan (nothing has been changed)"]
        if self.already_migrated and self.steps_done is None:
            lines.append("  this database already has a migration history: use `ongea-pesa migrate`")
            return "\n".join(lines)
        finished = self.steps_done is not None and set(self.steps_done) >= set(APPLY_STEPS)
        if self.steps_done is not None:
            lines.append(
                "  adoption finished"
                if finished
                else f"  adoption started, steps done: {', '.join(self.steps_done) or 'none'}; "
                "`migrate --adopt --apply` finishes it"
            )
        lines.append(f"  found founding tables: {', '.join(self.tables)}")
        with_rls = [t for t, on in self.rls.items() if on]
        lines.append(f"  row level security on: {', '.join(with_rls) or 'none'}")
        if finished:
            lines.append(
                "  the earlier rows as they were are in schema adopt_backup; what still waits on a person "
                "follows (fix it, then rerun `migrate --adopt --apply` to validate)"
            )
        else:
            lines += self._will()
        if self.open_payments:
            lines.append(
                f"  {self.open_payments} earlier payments are pending or processing: kept as they are; the "
                "ledger never confirms or pays an adopted one -> decide: did the money leave (set completed) "
                "or not (failed/cancelled)?"
            )
        for s in self.still_not_valid:
            lines.append(f"  {s}")
        if not self.broken:
            lines.append("  rows breaking a check: none")
        else:
            lines.append(f"  rows breaking a check ({len(self.broken)}; listed, never deleted):")
            for b in self.broken:
                stop = " [fix before --apply: a unique index cannot wait]" if b.blocking else ""
                lines.append(
                    f"    {b.table} {b.row_id}: {b.check} (value {b.value}){stop} -> decide: {b.decision}"
                )
        return "\n".join(lines)


async def plan_adoption(conn: asyncpg.Connection) -> AdoptionPlan:
    """What adoption would do to this database (or has left to do); `AdoptionError` when it has none of the
    founding tables."""
    async with conn.transaction(readonly=True):
        if await conn.fetchval("SELECT to_regclass('adopt_backup.found') IS NOT NULL"):
            return await _plan_started(conn)
        present = {
            r["relname"]: r["relrowsecurity"]
            for r in await conn.fetch(
                """SELECT c.relname, c.relrowsecurity FROM pg_class c
                   JOIN pg_namespace n ON n.oid = c.relnamespace
                   WHERE n.nspname = 'public' AND c.relkind = 'r' AND c.relname = ANY($1::text[])""",
                list(FOUNDING_TABLES),
            )
        }
        # A plain `migrate` that stopped on the earlier tables leaves a history without the founding schema:
        # that database is still one to adopt.
        migrated = await conn.fetchval("SELECT to_regclass('public.schema_migrations') IS NOT NULL") and (
            await conn.fetchval(
                "SELECT EXISTS (SELECT 1 FROM public.schema_migrations WHERE version = '0002')"
            )
        )
        if "transactions" not in present:
            raise AdoptionError("no public.transactions table: this is not a database of the earlier schema")
        # Supabase's own auth.users (GoTrue's, with `aud`), not the subset sql/0001 makes on plain PostgreSQL
        # (which a plain `migrate` that stopped on the earlier tables may have left).
        supabase = await conn.fetchval(
            """SELECT EXISTS (SELECT 1 FROM information_schema.columns
                              WHERE table_schema = 'auth' AND table_name = 'users' AND column_name = 'aud')"""
        )
        columns = {
            r["column_name"]
            for r in await conn.fetch(
                """SELECT column_name FROM information_schema.columns
                   WHERE table_schema = 'public' AND table_name = 'transactions'"""
            )
        }
        tables = [t for t in FOUNDING_TABLES if t in present]
        plan = AdoptionPlan(
            tables=tables,
            missing_tables=[t for t in FOUNDING_TABLES if t not in present],
            rls={t: present[t] for t in tables},
            supabase_auth=bool(supabase),
            missing_columns=[f"transactions.{c}" for c in TRANSACTION_COLUMNS if c not in columns],
            already_migrated=bool(migrated),
            policies=[
                f"{r['tablename']}: {r['policyname']}"
                for r in await conn.fetch(
                    """SELECT tablename, policyname FROM pg_policies
                       WHERE schemaname = 'public' AND tablename = ANY($1::text[]) ORDER BY 1, 2""",
                    tables,
                )
            ],
        )
        if not migrated:
            await _list_rows(conn, plan, "public")
    return plan


async def _plan_started(conn: asyncpg.Connection) -> AdoptionPlan:
    found = json.loads(await conn.fetchval("SELECT plan FROM adopt_backup.found"))
    steps = [r["step"] for r in await conn.fetch("SELECT step FROM adopt_backup.steps ORDER BY done_at")]
    plan = AdoptionPlan(
        tables=found["tables"],
        missing_tables=found["missing_tables"],
        rls=found["rls"],
        supabase_auth=found["supabase_auth"],
        missing_columns=found["missing_columns"],
        already_migrated=True,
        policies=found["policies"],
        steps_done=steps,
    )
    # Before the copy the rows are as backed up; after it, as a person may have fixed them since.
    await _list_rows(conn, plan, "public" if "copy" in steps else "adopt_backup")
    if "copy" in steps:
        for r in await conn.fetch(
            """SELECT a.table_name, a.name FROM adopt_backup.constraints a
               JOIN pg_constraint c
                 ON c.conname = a.name AND c.conrelid = to_regclass('public.' || a.table_name)
               WHERE a.validated AND NOT c.convalidated ORDER BY 1, 2"""
        ):
            rows = await breaking_rows(conn, r["table_name"], r["name"])
            plan.still_not_valid.append(
                f"{r['table_name']}.{r['name']} still NOT VALID: {len(rows)} rows break it "
                f"({', '.join(rows[:5])}{', ...' if len(rows) > 5 else ''})"
            )
    return plan


async def _list_rows(conn: asyncpg.Connection, plan: AdoptionPlan, schema: str) -> None:
    plan.broken = await _broken_rows(conn, "profiles" in plan.tables, schema)
    plan.broken += await _duplicates(conn, plan.tables, schema)
    if "mpesa_transactions" in plan.tables:
        plan.broken += [
            BrokenRow(
                "mpesa_transactions",
                r["id"],
                "status must be one of pending, completed, failed",
                repr(r["status"]),
                "did this top-up's money arrive (completed; its receipt?) or not (failed)?",
            )
            for r in await conn.fetch(
                f"""SELECT id::text AS id, status FROM {schema}.mpesa_transactions
                    WHERE status NOT IN ('pending', 'completed', 'failed') ORDER BY id"""
            )
        ]
    if plan.supabase_auth:
        plan.broken += await _users_without_auth(conn, plan.tables, schema)
    copied = schema == "public" and plan.steps_done is not None  # now beside new payments: the adopted ones
    plan.open_payments = await conn.fetchval(
        f"SELECT count(*) FROM {schema}.transactions WHERE status IN ('pending', 'processing')"
        + (" AND adopted" if copied else "")
    )


# The unique indexes later migrations put on founding tables (sql/0011), which earlier rows may break:
# (table, what it says, its columns, its predicate, what a person decides).
UNIQUE_RULES = (
    (
        "contacts",
        "one contact per number per user",
        ("user_id", "phone_number"),
        "true",
        "which of these contacts is the one to keep (delete or renumber the others)?",
    ),
    (
        "payment_methods",
        "one default payment method per user",
        ("user_id",),
        "is_default AND is_active",
        "which one is the default (set is_default false on the others)?",
    ),
    (
        "payment_methods",
        "each M-Pesa number saved once",
        ("user_id", "mpesa_number"),
        "method_type = 'mpesa' AND is_active",
        "which of these is the one to keep (set is_active false on the others)?",
    ),
    (
        "payment_methods",
        "each bank account saved once",
        ("user_id", "bank_code", "bank_account_number"),
        "method_type = 'bank' AND is_active",
        "which of these is the one to keep (set is_active false on the others)?",
    ),
    (
        "payment_methods",
        "each card saved once",
        ("user_id", "card_token"),
        "method_type = 'card' AND is_active",
        "which of these is the one to keep (set is_active false on the others)?",
    ),
)


async def _duplicates(conn: asyncpg.Connection, tables: list[str], schema: str) -> list[BrokenRow]:
    """The rows a unique index of the new schema would refuse: they stop `--apply` until fixed."""
    broken: list[BrokenRow] = []
    for table, says, columns, where, decision in UNIQUE_RULES:
        if table not in tables:
            continue
        have = {
            r["column_name"]
            for r in await conn.fetch(
                """SELECT column_name FROM information_schema.columns
                   WHERE table_schema = $1 AND table_name = $2""",
                schema,
                table,
            )
        }
        needed = set(columns) | {c for c in ("is_default", "is_active", "method_type") if c in where}
        if not needed <= have:
            continue  # the earlier table lacks a column: every row gets its default, which breaks nothing
        cols = ", ".join(columns)
        for r in await conn.fetch(
            f"""SELECT id::text AS id, concat_ws(' / ', {cols}) AS value FROM (
                    SELECT *, count(*) OVER (PARTITION BY {cols}) AS n FROM {schema}.{table}
                    WHERE {where} AND {" AND ".join(f"{c} IS NOT NULL" for c in columns)}) x
                WHERE n > 1 ORDER BY value, id"""
        ):
            broken.append(BrokenRow(table, r["id"], says, repr(r["value"]), decision, blocking=True))
    return broken


async def _users_without_auth(conn: asyncpg.Connection, tables: list[str], schema: str) -> list[BrokenRow]:
    """Supabase: the user ids of the earlier tables that Supabase's auth.users lacks (their foreign keys stay
    NOT VALID until the person creates those users in Supabase Auth, or removes their rows)."""
    owners = [
        f"SELECT {'id' if t == 'profiles' else 'user_id'} AS id, '{t}' AS t FROM {schema}.{t}"
        for t in tables
        if t == "profiles"
        or await conn.fetchval(
            """SELECT EXISTS (SELECT 1 FROM information_schema.columns
               WHERE table_schema = $1 AND table_name = $2 AND column_name = 'user_id')""",
            schema,
            t,
        )
    ]
    return [
        BrokenRow(
            "auth.users",
            str(r["id"]),
            "every user id must be a user of auth.users",
            f"missing; has rows in {', '.join(r['ts'])}",
            "create this user in Supabase Auth (with their phone), or is the user gone (remove the rows)?",
        )
        for r in await conn.fetch(
            f"""SELECT id, array_agg(DISTINCT t ORDER BY t) AS ts FROM ({" UNION ALL ".join(owners)}) o
                WHERE id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM auth.users a WHERE a.id = o.id)
                GROUP BY id ORDER BY id"""
        )
    ]


async def _broken_rows(conn: asyncpg.Connection, has_profiles: bool, schema: str) -> list[BrokenRow]:
    broken: list[BrokenRow] = []
    for r in await conn.fetch(
        f"""SELECT id::text AS id, amount, type, status, phone FROM {schema}.transactions
           WHERE amount IS NULL OR amount <= 0 OR amount > $1 OR type IS NULL
              OR NOT (type = ANY($2::text[])) OR NOT (status = ANY($3::text[]))
              OR coalesce(phone, '') <> ''
           ORDER BY id""",
        MAX_AMOUNT,
        list(TRANSACTION_TYPES),
        list(TRANSACTION_STATUSES),
    ):
        row_id, amount = r["id"], r["amount"]
        if amount is None or amount <= 0 or amount > MAX_AMOUNT:
            broken.append(
                BrokenRow(
                    "transactions",
                    row_id,
                    "amount must be above 0 and at most 999,999",
                    str(amount),
                    "was it really this amount (split it into payments of at most 999,999), or is the amount "
                    "mistyped (correct it)?",
                )
            )
        if r["type"] is None:
            broken.append(
                BrokenRow(
                    "transactions",
                    row_id,
                    "type must be set",
                    "NULL",
                    "which kind of payment was it (send_phone, paybill, buy_goods_till, ...)?",
                )
            )
        elif r["type"] not in TRANSACTION_TYPES:
            broken.append(
                BrokenRow(
                    "transactions",
                    row_id,
                    "type must be one of " + ", ".join(TRANSACTION_TYPES),
                    repr(r["type"]),
                    "which known type does this one mean?",
                )
            )
        if r["status"] is not None and r["status"] not in TRANSACTION_STATUSES:
            broken.append(
                BrokenRow(
                    "transactions",
                    row_id,
                    "status must be one of " + ", ".join(TRANSACTION_STATUSES),
                    repr(r["status"]),
                    "did the money leave (completed), not leave (failed/cancelled), or is it unknown "
                    "(ask M-Pesa for the receipt first)?",
                )
            )
        if r["phone"] and not _normalisable(r["phone"]):
            broken.append(
                BrokenRow(
                    "transactions",
                    row_id,
                    "phone must be a Kenyan mobile number",
                    repr(r["phone"]),
                    "what is the recipient's real number (the record keeps the old one in the backup)?",
                )
            )
    if has_profiles:
        for r in await conn.fetch(
            f"SELECT id::text AS id, phone_number, wallet_balance FROM {schema}.profiles ORDER BY id"
        ):
            if r["wallet_balance"] is not None and r["wallet_balance"] < 0:
                broken.append(
                    BrokenRow(
                        "profiles",
                        r["id"],
                        "wallet_balance must not be negative",
                        str(r["wallet_balance"]),
                        "does the user owe this (settle it outside the app), or is the balance wrong "
                        "(find the missing credit)?",
                    )
                )
            if r["phone_number"] is not None and not _normalisable(r["phone_number"]):
                broken.append(
                    BrokenRow(
                        "profiles",
                        r["id"],
                        "phone_number must be a Kenyan mobile number",
                        repr(r["phone_number"]),
                        "what is the user's real number? They cannot sign in or top up until it is fixed.",
                    )
                )
    return broken


def _normalisable(raw: str) -> bool:
    try:
        normalize_ke_phone(raw)
    except LedgerError:
        return False
    return True


# `migrate --adopt --apply`, step by step. Each step but `migrate` is one transaction that records itself in
# adopt_backup.steps, so a rerun (after a crash, or of a finished adoption) does only what is left:
# * backup: a copy of every founding table as it was, into schema adopt_backup (what byte-for-byte is
#   checked against, and what a person restores from), and what was found (adopt_backup.found).
# * aside: the founding tables move, with their earlier indexes, triggers and policies, to schema adopt_old,
#   so that public looks like an empty database.
# * migrate: the same `migrate()` as a fresh database's: every numbered file (and whatever else migrate
#   applies) recorded in schema_migrations with its checksum; a later plain `migrate` applies only newer
#   files.
# * copy: the rows come back from adopt_old into the migrated tables, byte for byte (columns the earlier
#   tables had and ours lack are added, not dropped). The checks and foreign keys of those tables are added
#   back NOT VALID, so no row is refused or changed; transactions, balance rows and top-ups are marked
#   `adopted` (sql/0030); every wallet gets its opening balance_history row; on plain PostgreSQL every user
#   id gets its auth.users row (the earlier database had no auth at all; on Supabase auth belongs to
#   Supabase, so a user id missing there is listed instead). adopt_old is then dropped.
# After the steps, on every run: each check or foreign key that a fresh database has validated is validated,
# unless rows still break it (they are listed); a person fixes them and reruns `migrate --adopt --apply`.
# Not migrate's lock key: migrate takes its own while adoption holds this one.
_ADOPT_LOCK = 0x0E6EA_AD07
# Their rows moved money before our ledger existed (sql/0030): the invariant checker leaves them out.
ADOPTED_MARK = ("transactions", "balance_history", "mpesa_transactions")


async def apply_adoption(conn: asyncpg.Connection, dsn: str) -> list[str]:
    """Run the adoption steps not done yet (`dsn` is the same database, for `migrate`); return what it did,
    including each check or foreign key left NOT VALID because rows still break it."""
    await conn.execute("SELECT pg_advisory_lock($1)", _ADOPT_LOCK)
    try:
        return await _apply(conn, dsn)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _ADOPT_LOCK)


async def _apply(conn: asyncpg.Connection, dsn: str) -> list[str]:
    plan = await plan_adoption(conn)
    if plan.already_migrated and plan.steps_done is None:
        raise AdoptionError("this database already has a migration history: use `ongea-pesa migrate`")
    blocking = [b for b in plan.broken if b.blocking]
    if blocking and plan.steps_done is None:
        raise AdoptionError(
            f"{len(blocking)} rows would break a unique index of the new schema (marked in the plan): "
            "fix them first; nothing was changed"
        )
    await conn.execute(
        """CREATE SCHEMA IF NOT EXISTS adopt_backup;
           CREATE TABLE IF NOT EXISTS adopt_backup.steps (
               step TEXT PRIMARY KEY, done_at TIMESTAMPTZ NOT NULL DEFAULT now())"""
    )
    done = {r["step"] for r in await conn.fetch("SELECT step FROM adopt_backup.steps")}
    said: list[str] = []
    if done >= set(APPLY_STEPS):
        said.append("the adoption is finished; only checks still NOT VALID are tried again")
    for step in APPLY_STEPS:
        if step in done:
            continue
        if step == "migrate":
            applied = await migrate(dsn, adopting=True)
            said.append(f"migrated: {len(applied)} migration files applied, as on a fresh database")
            fault_point("adopt_migrate")
            await conn.execute("INSERT INTO adopt_backup.steps (step) VALUES ('migrate')")
            continue
        async with conn.transaction():
            said += await _STEPS[step](conn, plan)
            fault_point(_FAULTS[step])
            await conn.execute("INSERT INTO adopt_backup.steps (step) VALUES ($1)", step)
    # Checks left NOT VALID are retried on every run: the person may have fixed the rows since.
    said += await validate_adopted_constraints(conn)
    return said


async def _backup(conn: asyncpg.Connection, plan: AdoptionPlan) -> list[str]:
    for table in plan.tables:
        await conn.execute(f"CREATE TABLE adopt_backup.{table} AS TABLE public.{table}")
    await conn.execute(
        """CREATE TABLE adopt_backup.found (plan JSONB NOT NULL);
           CREATE TABLE adopt_backup.constraints (
               table_name TEXT NOT NULL, name TEXT NOT NULL, definition TEXT NOT NULL,
               validated BOOLEAN NOT NULL, not_null_column TEXT, PRIMARY KEY (table_name, name))"""
    )
    await conn.execute("INSERT INTO adopt_backup.found (plan) VALUES ($1::jsonb)", json.dumps(plan.found()))
    return [f"backed up {', '.join(plan.tables)} into schema adopt_backup"]


async def _aside(conn: asyncpg.Connection, plan: AdoptionPlan) -> list[str]:
    await conn.execute("CREATE SCHEMA adopt_old")
    for table in plan.tables:
        await conn.execute(f"ALTER TABLE public.{table} SET SCHEMA adopt_old")
    return [f"set the earlier {', '.join(plan.tables)} aside (schema adopt_old) for the migrations"]


async def _copy(conn: asyncpg.Connection, plan: AdoptionPlan) -> list[str]:
    said: list[str] = []
    if "profiles" in plan.tables:
        said += await _unmake_backfilled_wallets(conn, plan)
    for table in plan.tables:
        said += await _copy_table(conn, table)
    if "balance_history" not in plan.tables:
        await _relax(conn, "balance_history")  # the opening rows of users Supabase's auth lacks
    if not plan.supabase_auth:
        said += await _auth_users(conn, plan)
    opened = await _with_triggers_off(
        conn,
        ["balance_history"],
        """INSERT INTO public.balance_history (user_id, previous_balance, new_balance, change_amount, reason)
           SELECT p.id, 0, coalesce(p.wallet_balance, 0), coalesce(p.wallet_balance, 0), 'opening_balance'
           FROM public.profiles p
           WHERE NOT EXISTS (SELECT 1 FROM public.balance_history b WHERE b.user_id = p.id AND NOT b.adopted)
           ORDER BY p.id""",
    )
    said.append(f"wrote {opened.split()[-1]} opening balance_history rows (one per wallet, its balance)")
    # Back NOT VALID: holds for every new row at once, refuses and changes no old one.
    for r in await conn.fetch(
        "SELECT table_name, name, definition FROM adopt_backup.constraints ORDER BY table_name, name"
    ):
        await conn.execute(
            f"ALTER TABLE public.{_q(r['table_name'])} "
            f"ADD CONSTRAINT {_q(r['name'])} {r['definition']} NOT VALID"
        )
    await conn.execute("DROP SCHEMA adopt_old CASCADE")
    return said


async def _unmake_backfilled_wallets(conn: asyncpg.Connection, plan: AdoptionPlan) -> list[str]:
    """On Supabase, sql/0022 gives every auth user without a profile a wallet (profile, free subscription,
    opening row of 0), and while the earlier profiles were set aside that was every user. For a user whose
    earlier profile is adopted, that made wallet goes: the earlier profile comes back instead, and its opening
    row is its balance. (The subscription stays, unless the earlier database has theirs.)"""
    earlier_subscriptions = (
        """, s AS (DELETE FROM public.subscriptions s USING made WHERE s.user_id = made.id
                     AND EXISTS (SELECT 1 FROM adopt_old.subscriptions o WHERE o.user_id = made.id))"""
        if "subscriptions" in plan.tables
        else ""
    )
    status = await _with_triggers_off(
        conn,
        ["balance_history", "profiles", "subscriptions"],
        f"""WITH made AS (SELECT p.id FROM public.profiles p JOIN adopt_old.profiles o ON o.id = p.id),
                 b AS (DELETE FROM public.balance_history h USING made WHERE h.user_id = made.id)
                 {earlier_subscriptions}
            DELETE FROM public.profiles p USING made WHERE p.id = made.id""",
    )
    made = int(status.split()[-1])
    return (
        [f"replaced {made} wallets the migrations made (sign-up backfill) by the earlier profiles"]
        if made
        else []
    )


async def _relax(conn: asyncpg.Connection, table: str) -> None:
    """Drop the checks and foreign keys of public.`table`, recorded to be added back NOT VALID."""
    for r in await conn.fetch(
        """SELECT conname, pg_get_constraintdef(oid) AS def, convalidated FROM pg_constraint
           WHERE conrelid = $1::regclass AND contype IN ('c', 'f') ORDER BY conname""",
        f"public.{table}",
    ):
        await conn.execute(f"ALTER TABLE public.{_q(table)} DROP CONSTRAINT {_q(r['conname'])}")
        await _record_constraint(
            conn, table, r["conname"], r["def"].removesuffix(" NOT VALID"), r["convalidated"]
        )


async def _copy_table(conn: asyncpg.Connection, table: str) -> list[str]:
    """The earlier rows of `table` into the migrated table, unchanged, with its checks and foreign keys
    dropped (recorded, added back NOT VALID by the caller) and a NOT NULL that old rows break made a check."""
    said: list[str] = []
    new = {r["attname"]: r for r in await _columns_of(conn, f"public.{table}")}
    old = await _columns_of(conn, f"adopt_old.{table}")
    for col in old:
        if col["attname"] not in new:
            await conn.execute(
                f"ALTER TABLE public.{_q(table)} ADD COLUMN {_q(col['attname'])} {col['type']}"
            )
            said.append(f"kept {table}.{col['attname']}, a column of the earlier table that ours lacks")
    await _relax(conn, table)
    for col in old:
        target = new.get(col["attname"])
        if target is not None and target["attnotnull"] and not col["attnotnull"]:
            name = col["attname"]
            if await conn.fetchval(
                f"SELECT EXISTS (SELECT 1 FROM adopt_old.{_q(table)} WHERE {_q(name)} IS NULL)"
            ):
                await conn.execute(f"ALTER TABLE public.{_q(table)} ALTER COLUMN {_q(name)} DROP NOT NULL")
                await _record_constraint(
                    conn, table, f"{table}_{name}_not_null", f"CHECK ({_q(name)} IS NOT NULL)", True, name
                )
    copied = [
        c
        for c in old
        if c["attname"] not in new
        or not (new[c["attname"]]["attidentity"] or new[c["attname"]]["attgenerated"])
    ]
    names = [_q(c["attname"]) for c in copied]
    values = [
        _q(c["attname"])
        if c["attname"] not in new or new[c["attname"]]["type"] == c["type"]
        else f"{_q(c['attname'])}::{new[c['attname']]['type']}"
        for c in copied
    ]
    if table in ADOPTED_MARK:
        names.append("adopted")
        values.append("true")
    order = [c for c in ("created_at", "id") if c in {o["attname"] for o in old}]
    # The plans the migrations seed (and later migrations change) are the ones the code means: an earlier
    # row of the same id stays in the backup only, and is named.
    seeded = " ON CONFLICT (id) DO NOTHING" if table == "subscription_plans" else ""
    if seeded:
        kept = await conn.fetch(
            """SELECT o.id FROM adopt_old.subscription_plans o JOIN public.subscription_plans p USING (id)
               ORDER BY o.id"""
        )
        if kept:
            said.append(
                "kept the migrations' subscription_plans "
                + ", ".join(r["id"] for r in kept)
                + " (the earlier rows of those ids are in adopt_backup.subscription_plans)"
            )
    try:
        status = await _with_triggers_off(
            conn,
            [table],
            f"INSERT INTO public.{_q(table)} ({', '.join(names)}) SELECT {', '.join(values)} "
            f"FROM adopt_old.{_q(table)}" + (f" ORDER BY {', '.join(order)}" if order else "") + seeded,
        )
    except asyncpg.PostgresError as exc:
        raise AdoptionError(
            f"the rows of {table} do not fit the migrated table ({exc}); nothing of this step was kept: "
            "fix those rows in the earlier table (schema adopt_old) and run --apply again"
        ) from exc
    if table == "mpesa_transactions":
        # The top-up worker never STK-queries or pushes an earlier top-up (sql/0030 would refuse its answer).
        await _with_triggers_off(
            conn,
            [table],
            """UPDATE public.mpesa_transactions
               SET query_due_at = 'infinity', stk_next_attempt_at = 'infinity' WHERE adopted""",
        )
    said.append(f"copied {status.split()[-1]} rows of {table} into the migrated table, unchanged")
    return said


async def _columns_of(conn: asyncpg.Connection, relation: str) -> list[asyncpg.Record]:
    columns: list[asyncpg.Record] = await conn.fetch(
        """SELECT attname, format_type(atttypid, atttypmod) AS type, attnotnull,
                  attidentity <> '' AS attidentity, attgenerated <> '' AS attgenerated
           FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped
           ORDER BY attnum""",
        relation,
    )
    return columns


async def _record_constraint(
    conn: asyncpg.Connection,
    table: str,
    name: str,
    definition: str,
    validated: bool,
    column: str | None = None,
) -> None:
    await conn.execute(
        """INSERT INTO adopt_backup.constraints (table_name, name, definition, validated, not_null_column)
           VALUES ($1, $2, $3, $4, $5)""",
        table,
        name,
        definition,
        validated,
        column,
    )


async def _with_triggers_off(conn: asyncpg.Connection, tables: list[str], sql: str) -> str:
    """`sql` with the user triggers of `tables` off (in this transaction): a copied row is not a new payment,
    sign-up or event, and the adopted-row guard (sql/0030) lets only the adoption write `adopted` rows."""
    for t in tables:
        await conn.execute(f"ALTER TABLE {_qualified(t)} DISABLE TRIGGER USER")
    status: str = await conn.execute(sql)
    for t in tables:
        await conn.execute(f"ALTER TABLE {_qualified(t)} ENABLE TRIGGER USER")
    return status


async def _auth_users(conn: asyncpg.Connection, plan: AdoptionPlan) -> list[str]:
    """Plain PostgreSQL: an auth.users row for every user id of the earlier tables (with the profile's phone
    where it normalises to a number no other profile has), so the foreign keys hold for them."""
    owners = [
        f"SELECT {'id' if t == 'profiles' else 'user_id'} AS id FROM public.{t}"
        for t in plan.tables
        if t == "profiles"
        or await conn.fetchval(
            """SELECT EXISTS (SELECT 1 FROM information_schema.columns
               WHERE table_schema = 'public' AND table_name = $1 AND column_name = 'user_id')""",
            t,
        )
    ]
    phones = """SELECT id, phone FROM (
               SELECT id, public.ledger_normal_ke_phone(phone_number) AS phone,
                      count(*) OVER (PARTITION BY public.ledger_normal_ke_phone(phone_number)) AS n
               FROM public.profiles) x WHERE phone IS NOT NULL AND n = 1"""
    status = await _with_triggers_off(
        conn,
        ["auth.users"],
        f"""INSERT INTO auth.users (id, phone)
            SELECT i.id, ph.phone FROM (SELECT DISTINCT id FROM ({" UNION ".join(owners)}) u
                                        WHERE id IS NOT NULL) i
            LEFT JOIN ({phones}) ph ON ph.id = i.id
            WHERE NOT EXISTS (SELECT 1 FROM auth.users a WHERE a.id = i.id)
            ORDER BY i.id""",
    )
    return [f"created {status.split()[-1]} auth.users rows for the user ids of the earlier tables"]


async def validate_adopted_constraints(conn: asyncpg.Connection) -> list[str]:
    """Validate each check or foreign key that a fresh database has validated and the adoption added NOT
    VALID; one that rows still break stays NOT VALID and is said, with those rows. A NOT NULL that old rows
    broke (kept as a check meanwhile) becomes the NOT NULL again once it holds."""
    if not await conn.fetchval("SELECT to_regclass('adopt_backup.constraints') IS NOT NULL"):
        return []
    said: list[str] = []
    for r in await conn.fetch(
        """SELECT a.table_name, a.name, a.not_null_column, c.convalidated
           FROM adopt_backup.constraints a
           JOIN pg_constraint c ON c.conname = a.name AND c.conrelid = to_regclass('public.' || a.table_name)
           WHERE a.validated AND NOT c.convalidated ORDER BY a.table_name, a.name"""
    ):
        table, name = _q(r["table_name"]), _q(r["name"])
        try:
            async with conn.transaction():
                await conn.execute(f"ALTER TABLE public.{table} VALIDATE CONSTRAINT {name}")
                if r["not_null_column"]:
                    await conn.execute(
                        f"ALTER TABLE public.{table} ALTER COLUMN {_q(r['not_null_column'])} SET NOT NULL; "
                        f"ALTER TABLE public.{table} DROP CONSTRAINT {name}"
                    )
        except (asyncpg.CheckViolationError, asyncpg.ForeignKeyViolationError):
            rows = await breaking_rows(conn, r["table_name"], r["name"])
            shown = ", ".join(rows[:5]) + (", ..." if len(rows) > 5 else "")
            said.append(f"check {r['name']} left NOT VALID: rows still break it ({len(rows)}: {shown})")
        else:
            said.append(f"validated check {r['name']}")
    return said


async def breaking_rows(conn: asyncpg.Connection, table: str, name: str) -> list[str]:
    """The ids of the rows of public.`table` that break its NOT VALID check or (one-column) foreign key."""
    con = await conn.fetchrow(
        """SELECT c.contype::text AS contype, pg_get_constraintdef(c.oid) AS def,
                  c.confrelid::regclass::text AS ref,
                  (SELECT attname FROM pg_attribute
                   WHERE attrelid = c.conrelid AND attnum = c.conkey[1]) AS col,
                  (SELECT attname FROM pg_attribute
                   WHERE attrelid = c.confrelid AND attnum = c.confkey[1]) AS refcol
           FROM pg_constraint c WHERE c.conname = $1 AND c.conrelid = to_regclass('public.' || $2)""",
        name,
        table,
    )
    if con is None:
        return []
    if con["contype"] == "c":
        expr = con["def"].removesuffix(" NOT VALID").removeprefix("CHECK ")
        where = f"({expr}) IS FALSE"
    else:
        where = (
            f"t.{_q(con['col'])} IS NOT NULL AND NOT EXISTS "
            f"(SELECT 1 FROM {con['ref']} r WHERE r.{_q(con['refcol'])} = t.{_q(con['col'])})"
        )
    return [
        r[0]
        for r in await conn.fetch(f"SELECT t.id::text FROM public.{_q(table)} t WHERE {where} ORDER BY 1")
    ]


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _qualified(table: str) -> str:
    schema, _, name = table.rpartition(".")
    return f"{_q(schema or 'public')}.{_q(name)}"


_STEPS = {"backup": _backup, "aside": _aside, "copy": _copy}
_FAULTS: dict[str, FaultPoint] = {"backup": "adopt_backup", "aside": "adopt_aside", "copy": "adopt_copy"}
