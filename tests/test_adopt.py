"""`ongea-pesa migrate --adopt` on databases made from the earlier schema (issue 26, part 1), in each real
shape: only `transactions`; several founding tables; with row level security; Supabase-shaped. Each has a few
thousand realistic rows, some of which break a check the new schema enforces."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path

import aiohttp
import asyncpg
import pytest

from ledger.adopt import APPLY_STEPS, plan_adoption
from ledger.db import connect
from ledger.invariants import check_invariants
from ledger.migrate import migrate
from ledger.users import create_user
from tests.server_conv.conftest import JWT_SECRET, start_server
from tests.server_conv.wsclient import Conv, mint
from tests.serving import poll_until
from voice_server.auth import mint_user_token

FIXTURES = Path(__file__).parent / "adopt_fixtures"
TRANSCRIPTS = Path(__file__).parent / "transcripts"
SHAPES = {
    "only_transactions": ["earlier_transactions.sql"],
    "several_tables": ["earlier_transactions.sql", "earlier_tables.sql"],
    "with_rls": ["earlier_transactions.sql", "earlier_tables.sql", "earlier_rls.sql"],
    "supabase": ["supabase_auth.sql", "earlier_transactions.sql", "earlier_tables.sql", "earlier_rls.sql"],
}
USERS = 300
TRANSACTIONS = 3000

# Rows that break a check: (id, type, amount, status, phone).
BAD_TRANSACTIONS = [
    (uuid.UUID(int=1), "send_phone", "1500000.00", "completed", "0712000001"),
    (uuid.UUID(int=2), None, "250.00", "completed", ""),
    (uuid.UUID(int=3), "paybill", "120.00", "settled", ""),
    (uuid.UUID(int=4), "send_phone", "80.00", "failed", "not a phone"),
    (uuid.UUID(int=5), "lipa_later", "80.00", "pending", ""),
]
# Top-ups: a status the new schema does not know.
BAD_TOPUPS = [(uuid.UUID(int=201), "300.00", "timeout")]
BAD_PROFILES = [
    (uuid.UUID(int=101), "0712999101", "-40.00"),
    (uuid.UUID(int=102), "12345", "10.00"),
]


async def build(conn: asyncpg.Connection, shape: str) -> None:
    """The shape from the fixture SQL, then realistic rows and the rows that break checks."""
    for name in SHAPES[shape]:
        await conn.execute((FIXTURES / name).read_text())
    await conn.execute(
        """
        SELECT setseed(0.26);
        CREATE TEMP TABLE u AS
            SELECT n, ('00000000-0000-4000-8000-' || lpad(n::text, 12, '0'))::uuid AS id
            FROM generate_series(1, $USERS) n;
        INSERT INTO public.transactions (user_id, type, amount, phone, till, paybill, account, status,
                                         voice_verified, confidence_score, voice_command_text,
                                         mpesa_transaction_id, created_at, updated_at)
        SELECT u.id,
               (ARRAY['send_phone', 'buy_goods_till', 'paybill', 'withdraw', 'buy_goods_pochi'])[1 + g % 5],
               round((10 + random() * 20000)::numeric, 2),
               CASE WHEN g % 5 IN (0, 4)
                    THEN '07' || (10 + g % 80)::text || lpad((g * 7919 % 1000000)::text, 6, '0') ELSE '' END,
               CASE WHEN g % 5 = 1 THEN (100000 + g)::text ELSE '' END,
               CASE WHEN g % 5 = 2 THEN '888880' ELSE '' END,
               CASE WHEN g % 5 = 2 THEN 'ACC' || g ELSE '' END,
               (ARRAY['completed', 'completed', 'completed', 'failed', 'pending', 'cancelled'])[1 + g % 6],
               g % 3 = 0, (50 + g % 51), 'tuma shilingi ' || (g % 900 + 100) || ' kwa mama',
               CASE WHEN g % 6 < 3 THEN 'QK' || upper(to_hex(g * 104729)) ELSE '' END,
               now() - (g || ' minutes')::interval, now() - (g || ' minutes')::interval
        FROM generate_series(1, $TRANSACTIONS) g JOIN u ON u.n = 1 + g % $USERS;
        """.replace("$USERS", str(USERS)).replace("$TRANSACTIONS", str(TRANSACTIONS))
    )
    await conn.executemany(
        "INSERT INTO public.transactions (id, user_id, type, amount, status, phone) "
        "VALUES ($1, '00000000-0000-4000-8000-000000000001', $2, $3::numeric, $4, $5)",
        BAD_TRANSACTIONS,
    )
    if "earlier_tables.sql" in SHAPES[shape]:
        await conn.execute(
            """
            INSERT INTO public.profiles (id, phone_number, wallet_balance, created_at)
            SELECT id, '0712' || lpad(n::text, 6, '0'), round((random() * 5000)::numeric, 2),
                   now() - (n || ' days')::interval FROM u;
            INSERT INTO public.contacts (user_id, name, phone_number)
            SELECT id, 'Mama ' || n, '0722' || lpad(n::text, 6, '0') FROM u;
            INSERT INTO public.voice_sessions (user_id, session_id, agent_id, status)
            SELECT id, 'sess-' || n, 'agent-1', 'ended' FROM u;
            INSERT INTO public.mpesa_transactions (user_id, checkout_request_id, merchant_request_id, amount,
                                                   phone_number, mpesa_receipt_number, status, created_at,
                                                   completed_at)
            SELECT id, 'ws_CO_0712' || lpad(n::text, 6, '0'), 'MR-' || n, 100 * (1 + n % 20),
                   '254712' || lpad(n::text, 6, '0'), CASE WHEN n % 4 <> 0 THEN 'RK' || (7000000 + n) END,
                   CASE WHEN n % 4 = 0 THEN 'pending' ELSE 'completed' END, now() - (n || ' hours')::interval,
                   CASE WHEN n % 4 <> 0 THEN now() - (n || ' hours')::interval END
            FROM u;
            INSERT INTO public.balance_history (user_id, previous_balance, new_balance, change_amount, reason,
                                                created_at)
            SELECT user_id, 0, amount, amount, 'mpesa_topup', completed_at FROM public.mpesa_transactions
            WHERE status = 'completed';
            INSERT INTO public.balance_history (user_id, transaction_id, previous_balance, new_balance,
                                                change_amount, reason, created_at)
            SELECT user_id, id, 20000, 20000 - amount, -amount, 'payment', created_at FROM public.transactions
            WHERE status = 'completed' AND amount < 20000;
            """
        )
        await conn.executemany(
            "INSERT INTO public.mpesa_transactions (id, user_id, amount, phone_number, status) "
            "VALUES ($1, '00000000-0000-4000-8000-000000000002', $2::numeric, '254712000002', $3)",
            BAD_TOPUPS,
        )
        await conn.executemany(
            "INSERT INTO public.profiles (id, phone_number, wallet_balance) VALUES ($1, $2, $3::numeric)",
            BAD_PROFILES,
        )
    if "supabase_auth.sql" in SHAPES[shape]:
        await conn.execute(
            """INSERT INTO auth.users (id, aud, role, phone)
               SELECT id, 'authenticated', 'authenticated', '254712' || lpad(n::text, 6, '0') FROM u"""
        )


async def snapshot(conn: asyncpg.Connection) -> dict[str, str]:
    """Every row of every public table, as text, by table: what `byte for byte` is compared on."""
    tables = [
        r["relname"]
        for r in await conn.fetch(
            """SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
               WHERE n.nspname = 'public' AND c.relkind = 'r' ORDER BY 1"""
        )
    ]
    return {
        t: await conn.fetchval(
            f"SELECT coalesce(string_agg(x::text, E'\\n' ORDER BY x::text), '') FROM public.{t} x"
        )
        for t in tables
    }


@pytest.fixture
async def earlier(empty_database: Callable[[], Awaitable[str]]) -> Callable[[str], Awaitable[str]]:
    async def make(shape: str) -> str:
        url = await empty_database()
        conn = await connect(url)
        try:
            await build(conn, shape)
        finally:
            await conn.close()
        return url

    return make


@pytest.mark.parametrize("shape", list(SHAPES))
async def test_the_plan_lists_every_row_that_breaks_a_check_and_changes_nothing(
    earlier: Callable[[str], Awaitable[str]], shape: str
) -> None:
    url = await earlier(shape)
    conn = await connect(url)
    try:
        before = await snapshot(conn)
        plan = await plan_adoption(conn)
        after = await snapshot(conn)
        migrated = await conn.fetchval("SELECT to_regclass('public.schema_migrations') IS NOT NULL")
    finally:
        await conn.close()
    assert after == before
    assert not migrated
    assert plan.missing_columns == [
        "transactions.error_message",
        "transactions.retry_count",
        "transactions.completed_at",
    ]
    assert plan.supabase_auth == (shape == "supabase")
    assert plan.rls["transactions"] == (shape in ("with_rls", "supabase"))
    listed = {(b.table, b.row_id) for b in plan.broken}
    expected = {("transactions", str(t[0])) for t in BAD_TRANSACTIONS}
    if shape != "only_transactions":
        expected |= {("profiles", str(p[0])) for p in BAD_PROFILES}
        expected |= {("mpesa_transactions", str(t[0])) for t in BAD_TOPUPS}
        assert "profiles" in plan.tables and "subscriptions" in plan.missing_tables
        assert "subscription_plans" in plan.tables
    else:
        assert plan.tables == ["transactions"]
    if shape == "supabase":
        # Users Supabase's auth lacks are listed (not created: auth belongs to Supabase).
        expected |= {("auth.users", str(p[0])) for p in BAD_PROFILES}
    # Exactly the planted rows: none of the 3,000 realistic ones is reported.
    assert listed == expected
    checks = {b.check.split(" ")[0] for b in plan.broken}
    assert {"amount", "type", "status", "phone"} <= checks
    assert all(b.decision for b in plan.broken)


def cli(*args: str, fault: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DARAJA_", "ONGEA_"))}
    if fault:
        env["ONGEA_FAULT"] = fault
    return subprocess.run(
        [sys.executable, "-m", "voice_server.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )


async def test_a_plain_migrate_that_stopped_on_the_earlier_tables_changes_nothing_and_adoption_goes_on(
    earlier: Callable[[str], Awaitable[str]],
) -> None:
    url = await earlier("several_tables")
    conn = await connect(url)
    try:
        before = await snapshot(conn)
    finally:
        await conn.close()
    stopped = await asyncio.to_thread(cli, "migrate", "--database-url", url)
    assert stopped.returncode != 0
    # Said in words, before anything is applied (before: 0001 applied, then 0002's bare "already exists").
    assert "but not their migration" in stopped.stderr and "migrate --adopt" in stopped.stderr, stopped.stderr
    assert "Traceback" not in stopped.stderr and "already exists" not in stopped.stderr
    conn = await connect(url)
    try:
        assert await conn.fetchval("SELECT to_regclass('public.schema_migrations') IS NULL OR NOT EXISTS "
                                   "(SELECT 1 FROM public.schema_migrations)")  # fmt: skip
    finally:
        await conn.close()
    planned = await asyncio.to_thread(cli, "migrate", "--adopt", "--database-url", url)
    assert planned.returncode == 0, planned.stderr
    assert "already has a migration history" not in planned.stdout
    assert str(BAD_TRANSACTIONS[0][0]) in planned.stdout
    done = await asyncio.to_thread(adopt_cli, url)
    assert done.returncode == 0, done.stderr
    conn = await connect(url)
    try:
        await assert_rows_kept(conn, {t: rows for t, rows in before.items() if t != "schema_migrations"})
        assert await migrate(url) == []
    finally:
        await conn.close()


async def test_rows_a_unique_index_would_refuse_stop_apply_before_it_changes_anything(
    earlier: Callable[[str], Awaitable[str]],
) -> None:
    """An address book imported twice: the same number twice for one user. A unique index cannot be added NOT
    VALID, so --apply refuses, naming them, and changes nothing; once fixed, it runs."""
    url = await earlier("several_tables")
    twice = uuid.UUID(int=301)
    conn = await connect(url)
    try:
        await conn.execute(
            """INSERT INTO public.contacts (id, user_id, name, phone_number)
               SELECT $1, user_id, 'Mama (imported again)', phone_number FROM public.contacts
               WHERE name = 'Mama 9'""",
            twice,
        )
        before = await snapshot(conn)
    finally:
        await conn.close()
    refused = await asyncio.to_thread(adopt_cli, url)
    assert refused.returncode == 1
    assert "fix them first; nothing was changed" in refused.stderr
    assert str(twice) in refused.stdout and "one contact per number per user" in refused.stdout
    conn = await connect(url)
    try:
        assert await snapshot(conn) == before
        assert await conn.fetchval("SELECT to_regnamespace('adopt_backup') IS NULL")
        await conn.execute("DELETE FROM public.contacts WHERE id = $1", twice)
    finally:
        await conn.close()
    done = await asyncio.to_thread(adopt_cli, url)
    assert done.returncode == 0, done.stderr


async def test_migrate_adopt_prints_the_plan(earlier: Callable[[str], Awaitable[str]]) -> None:
    url = await earlier("several_tables")
    out = await asyncio.to_thread(cli, "migrate", "--adopt", "--database-url", url)
    assert out.returncode == 0, out.stderr
    assert "nothing has been changed" in out.stdout
    assert str(BAD_TRANSACTIONS[0][0]) in out.stdout and "decide:" in out.stdout
    assert "transactions.error_message" in out.stdout


async def test_a_database_without_the_earlier_transactions_is_refused_and_a_migrated_one_is_sent_to_migrate(
    empty_database: Callable[[], Awaitable[str]], database_url: str
) -> None:
    empty = await empty_database()
    out = await asyncio.to_thread(cli, "migrate", "--adopt", "--database-url", empty)
    assert out.returncode == 1
    assert "not a database of the earlier schema" in out.stderr
    out = await asyncio.to_thread(cli, "migrate", "--adopt", "--database-url", database_url)
    assert out.returncode == 0, out.stderr
    assert "already has a migration history" in out.stdout


async def fingerprint(conn: asyncpg.Connection) -> dict[str, list[str]]:
    """The schema of `public` as a person would compare two databases: every column (type, NOT NULL, default,
    position), constraint (definition, validated), index, policy, trigger (and whether it is enabled),
    function (arguments, body, who may run it), table and column grant, row level security, and the
    migration history (numbered and repeatable). Not the rows."""
    queries = {
        "columns": """SELECT c.relname || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
                             || ' #' || a.attnum || ' nn=' || a.attnotnull || ' id=' || a.attidentity::text
                             || ' gen=' || a.attgenerated::text
                             || ' def=' || coalesce(pg_get_expr(d.adbin, d.adrelid), '')
                             || ' acl=' || coalesce(a.attacl::text, '')
                      FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
                      JOIN pg_namespace n ON n.oid = c.relnamespace
                      LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
                      WHERE n.nspname = 'public' AND c.relkind IN ('r', 'v', 'm') AND a.attnum > 0
                        AND NOT a.attisdropped""",
        "constraints": """SELECT c.relname || ' ' || k.conname || ' ' || pg_get_constraintdef(k.oid)
                                 || ' valid=' || k.convalidated
                          FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid
                          JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public'""",
        "indexes": "SELECT indexdef FROM pg_indexes WHERE schemaname = 'public'",
        "policies": """SELECT tablename || ' ' || policyname || ' ' || cmd || ' ' || roles::text || ' '
                              || coalesce(qual, '') || ' ' || coalesce(with_check, '')
                       FROM pg_policies WHERE schemaname = 'public'""",
        "triggers": """SELECT pg_get_triggerdef(t.oid) || ' enabled=' || t.tgenabled::text FROM pg_trigger t
                       JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
                       WHERE n.nspname = 'public' AND NOT t.tgisinternal""",
        "functions": """SELECT p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ') '
                               || md5(pg_get_functiondef(p.oid)) || ' ' || coalesce(p.proacl::text, '')
                        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                        WHERE n.nspname = 'public' AND p.prokind IN ('f', 'p')""",
        "tables": """SELECT c.relname || ' ' || c.relkind::text || ' rls=' || c.relrowsecurity || '/'
                            || c.relforcerowsecurity || ' acl=' || coalesce(c.relacl::text, '')
                     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                     WHERE n.nspname = 'public' AND c.relkind IN ('r', 'v', 'm', 'S')""",
        "migrations": "SELECT version || ' ' || name || ' ' || checksum FROM public.schema_migrations",
        "repeatables": "SELECT name || ' ' || checksum FROM public.schema_repeatables",
    }
    found = {k: sorted(r[0] for r in await conn.fetch(q)) for k, q in queries.items()}
    # A check added back (NOT VALID, then validated) is deparsed with its AND chain flattened: the same
    # expression, other parentheses.
    found["constraints"] = sorted(re.sub(r"[()\s]", "", c) for c in found["constraints"])
    return found


async def fresh_fingerprint(empty_database: Callable[[], Awaitable[str]], shape: str) -> dict[str, list[str]]:
    """What a fresh database of the same kind (Supabase-shaped or plain) has after `migrate`."""
    url = await empty_database()
    if shape == "supabase":
        conn = await connect(url)
        try:
            await conn.execute((FIXTURES / "supabase_auth.sql").read_text())
        finally:
            await conn.close()
    await migrate(url)
    conn = await connect(url)
    try:
        return await fingerprint(conn)
    finally:
        await conn.close()


async def assert_rows_kept(conn: asyncpg.Connection, before: dict[str, str]) -> None:
    """Byte for byte: every earlier table's original columns, now, in the backup, and as built."""
    for table, rows in before.items():
        cols = await conn.fetchval(
            """SELECT string_agg(quote_ident(column_name), ', ' ORDER BY ordinal_position)
               FROM information_schema.columns WHERE table_schema = 'adopt_backup' AND table_name = $1""",
            table,
        )
        now = await conn.fetchval(
            "SELECT coalesce(string_agg(x::text, E'\\n' ORDER BY x::text), '') "
            f"FROM (SELECT {cols} FROM public.{table} WHERE {_earlier(table)}) x"
        )
        backed = await conn.fetchval(
            f"SELECT coalesce(string_agg(x::text, E'\\n' ORDER BY x::text), '') FROM adopt_backup.{table} x"
        )
        assert backed == rows, table
        if table == "subscription_plans":
            earlier = await conn.fetchval(
                "SELECT coalesce(string_agg(x::text, E'\\n' ORDER BY x::text), '') "
                f"FROM adopt_backup.{table} x WHERE {_earlier(table)}"
            )
            assert now == earlier and "family" in now
            seeded = "SELECT count(*) FROM public.subscription_plans WHERE id = ANY($1::text[])"
            assert await conn.fetchval(seeded, SEEDED_PLANS) == len(SEEDED_PLANS)
        else:
            assert now == rows, table


SEEDED_PLANS = ["free", "basic", "pro", "business"]


def _earlier(table: str) -> str:
    """The earlier rows of a table as they are now: balance_history also has the opening rows the adoption
    wrote; the plans the migrations seed are theirs (the earlier rows of those ids are in the backup only)."""
    if table == "balance_history":
        return "adopted"
    if table == "subscription_plans":
        return "id <> ALL('{free,basic,pro,business}')"
    return "true"


async def fix_listed_rows(conn: asyncpg.Connection, shape: str) -> None:
    """What a person decides about each listed row, done by hand as the plan says."""
    async with conn.transaction():
        await conn.execute("SET LOCAL ongea.adopt_fix = 'on'")
        await conn.execute(
            "UPDATE public.transactions SET amount = 999999 WHERE id = $1", BAD_TRANSACTIONS[0][0]
        )
        await conn.execute(
            "UPDATE public.transactions SET type = 'send_phone' WHERE id = $1", BAD_TRANSACTIONS[1][0]
        )
        await conn.execute(
            "UPDATE public.transactions SET status = 'completed' WHERE id = $1", BAD_TRANSACTIONS[2][0]
        )
        await conn.execute(
            "UPDATE public.transactions SET type = 'paybill' WHERE id = $1", BAD_TRANSACTIONS[4][0]
        )
        if shape == "only_transactions":
            return
        await conn.execute(
            "UPDATE public.mpesa_transactions SET status = 'failed' WHERE id = $1", BAD_TOPUPS[0][0]
        )
        # The negative wallet was wrong (the missing credit was found outside the app): the wallet and its
        # opening row say 0.
        owed = BAD_PROFILES[0][0]
        await conn.execute("UPDATE public.profiles SET wallet_balance = 0 WHERE id = $1", owed)
        await conn.execute(
            """UPDATE public.balance_history SET new_balance = 0, change_amount = 0
               WHERE user_id = $1 AND reason = 'opening_balance' AND NOT adopted""",
            owed,
        )
        if shape == "supabase":
            # The two users Supabase Auth lacked are created there (no phone: they keep their profiles).
            await conn.executemany(
                "INSERT INTO auth.users (id, aud, role) VALUES ($1, 'authenticated', 'authenticated')",
                [(p[0],) for p in BAD_PROFILES],
            )


def adopt_cli(url: str, fault: str | None = None) -> subprocess.CompletedProcess[str]:
    return cli("migrate", "--adopt", "--apply", "--database-url", url, fault=fault)


@pytest.mark.parametrize("shape", list(SHAPES))
async def test_an_adopted_database_keeps_every_row_is_a_fresh_one_once_fixed_and_serves(
    earlier: Callable[[str], Awaitable[str]],
    empty_database: Callable[[], Awaitable[str]],
    tmp_path: Path,
    shape: str,
) -> None:
    url = await earlier(shape)
    conn = await connect(url)
    try:
        before = await snapshot(conn)
    finally:
        await conn.close()
    done = await asyncio.to_thread(adopt_cli, url)
    assert done.returncode == 0, done.stderr
    assert "check transactions_amount_check left NOT VALID" in done.stdout
    conn = await connect(url)
    try:
        await assert_rows_kept(conn, before)
        earlier_users = shape != "only_transactions"
        # The adopted rows are marked: no money moved through the ledger for them.
        assert await conn.fetchval("SELECT bool_and(adopted) FROM public.transactions")
        # New rows are held to every check at once, while listed old ones break it.
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.execute(
                "INSERT INTO public.transactions (user_id, type, amount) VALUES ($1, 'paybill', 2000000)",
                uuid.UUID(int=7),
            )
        # A later plain migrate has nothing to apply: the history is a fresh database's.
        assert await migrate(url) == []
        violations = await check_invariants(conn)
        if earlier_users:
            # Every wallet has its opening row; only the negative wallet (a listed row) breaks the books.
            assert await conn.fetchval(
                """SELECT count(*) FROM public.profiles p WHERE (SELECT count(*) FROM public.balance_history b
                   WHERE b.user_id = p.id AND b.reason = 'opening_balance' AND NOT b.adopted) = 1"""
            ) == USERS + len(BAD_PROFILES)
            assert violations and all(str(BAD_PROFILES[0][0]) in v for v in violations), violations
        else:
            assert violations == []
        # The person fixes the listed rows; the rerun validates every check: the schema is a fresh one's.
        await fix_listed_rows(conn, shape)
        again = await asyncio.to_thread(adopt_cli, url)
        assert again.returncode == 0, again.stderr
        assert (
            "left NOT VALID" not in again.stdout
            and "validated check transactions_amount_check" in again.stdout
        )
        adopted, fresh = await fingerprint(conn), await fresh_fingerprint(empty_database, shape)
        for part, items in fresh.items():
            assert adopted[part] == items, (part, set(adopted[part]) ^ set(items))
        assert await check_invariants(conn) == []
        if earlier_users:
            user_id = uuid.UUID("00000000-0000-4000-8000-000000000007")  # an earlier user, earlier wallet
        else:
            made = await create_user(conn, "0745 100 007", balance=Decimal(0))
            user_id = made.user_id
        start = await conn.fetchval("SELECT wallet_balance FROM public.profiles WHERE id = $1", user_id)
    finally:
        await conn.close()

    # Serve the adopted database: the user tops up 500 and pays 100 by voice.
    server = start_server(url, tmp_path / "serve")
    try:
        token = mint_user_token(JWT_SECRET, user_id, ttl_seconds=600)
        async with aiohttp.ClientSession() as http:
            async with http.post(
                f"{server.url}/v1/topups", json={"amount": 500}, headers={"Authorization": f"Bearer {token}"}
            ) as r:
                assert r.status == 201, await r.text()
        conn = await connect(url)
        try:

            async def credited() -> bool:
                wallet = await conn.fetchval(
                    "SELECT wallet_balance FROM public.profiles WHERE id = $1", user_id
                )
                return bool(wallet == start + 500)

            await poll_until("the top-up credited", credited)
            session = await mint(server.url, token)
            conv, _ = await Conv.open(session["ws_url"])
            proposed = await conv.say("send 100 to 0722 000 001")
            assert proposed.summary["outcome"] == "proposed", proposed.events
            card = proposed.calls("show_proposal")[0]
            done_turn = await conv.answer(card["tool_call_id"], "confirm")
            assert done_turn.summary["outcome"] == "committed", done_turn.events
            transaction_id = uuid.UUID(
                str(done_turn.calls("show_receipt")[0]["parameters"]["transaction_id"])
            )
            await conv.close()

            async def paid() -> bool:
                status = await conn.fetchval(
                    "SELECT status FROM public.transactions WHERE id = $1", transaction_id
                )
                return bool(status == "completed")

            await poll_until("the payment paid out", paid)
            assert await check_invariants(conn) == []
        finally:
            await conn.close()
    finally:
        assert server.stop() == 0, server.output()[-3000:]

    replayed = await asyncio.to_thread(
        cli, "replay", str(TRANSCRIPTS / "en-tap-confirm.yaml"), "--database-url", url
    )
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    assert replayed.stdout.startswith("PASS")

    # Rerunning the finished adoption changes nothing.
    conn = await connect(url)
    try:
        settled = await snapshot(conn)
        last = await asyncio.to_thread(adopt_cli, url)
        assert last.returncode == 0, last.stderr
        assert "the adoption is finished" in last.stdout and "  adoption finished" in last.stdout
        assert "still NOT VALID:" not in last.stdout and "left NOT VALID" not in last.stdout
        assert await snapshot(conn) == settled
        assert await check_invariants(conn) == []
    finally:
        await conn.close()


@pytest.mark.parametrize("step", APPLY_STEPS)
async def test_an_adoption_killed_in_a_step_and_run_again_loses_nothing_and_finishes(
    earlier: Callable[[str], Awaitable[str]], step: str
) -> None:
    url = await earlier("several_tables")
    conn = await connect(url)
    try:
        before = await snapshot(conn)
    finally:
        await conn.close()
    killed = await asyncio.to_thread(adopt_cli, url, f"adopt_{step}")
    assert killed.returncode == -9, killed.stderr
    conn = await connect(url)
    try:
        done = {r["step"] for r in await conn.fetch("SELECT step FROM adopt_backup.steps")}
        assert step not in done and done == set(APPLY_STEPS[: APPLY_STEPS.index(step)])
        # The plan of a half-done adoption says so, and still lists the rows to fix.
        planned = await asyncio.to_thread(cli, "migrate", "--adopt", "--database-url", url)
        assert planned.returncode == 0, planned.stderr
        assert str(BAD_TRANSACTIONS[0][0]) in planned.stdout
        # (Killed in the first step, nothing of it was kept: the plan is the one of an earlier database.)
        assert ("adoption started" in planned.stdout) == (step != "backup")
    finally:
        await conn.close()
    # Until it is finished nothing else migrates it, so no server builds an empty schema where the rows set
    # aside are to come back (before: a plain migrate after `aside` did, as `serve` would on start).
    stopped = await asyncio.to_thread(cli, "migrate", "--database-url", url)
    assert stopped.returncode != 0
    assert "adoption of this database was started and not finished" in stopped.stderr
    assert "migrate --adopt --apply" in stopped.stderr and "Traceback" not in stopped.stderr
    again = await asyncio.to_thread(adopt_cli, url)
    assert again.returncode == 0, again.stderr
    conn = await connect(url)
    try:
        done = {r["step"] for r in await conn.fetch("SELECT step FROM adopt_backup.steps")}
        assert done == set(APPLY_STEPS)
        await assert_rows_kept(conn, before)
        assert await conn.fetchval("SELECT count(*) FROM public.transactions") == TRANSACTIONS + len(
            BAD_TRANSACTIONS
        )
        assert await conn.fetchval("SELECT to_regnamespace('adopt_old') IS NULL")
        violations = await check_invariants(conn)
        assert violations and all(str(BAD_PROFILES[0][0]) in v for v in violations), violations
    finally:
        await conn.close()
