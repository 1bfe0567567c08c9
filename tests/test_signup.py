"""Sign-up (issue 25, sql/0022): a row in auth.users, as Supabase Auth writes it after a phone OTP, gives a
profile, a free subscription and a wallet of 0 whose books hold; the token of that person then works. The
trigger's function runs as its owner (Supabase Auth's own role may not touch public tables), and neither
`authenticated` nor `anon` can call it or change the trigger. On plain PostgreSQL `ongea-pesa user add` goes
through the same trigger."""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal
from pathlib import Path

import aiohttp
import asyncpg
import pytest
from aiohttp import web
from pydantic import SecretStr

from ledger.db import create_pool
from ledger.invariants import check_invariants
from ledger.migrate import migrate, migrations_dir
from ledger.models import LedgerError, ProposalRequest
from ledger.service import Ledger
from ledger.users import create_user
from tests.test_supabase_compat import ROLES, SUPABASE_LIKE
from voice_server.app import create_app
from voice_server.auth import mint_user_token
from voice_server.settings import Settings

# Supabase Auth (GoTrue) writes auth.users as its own role, which owns the auth schema and has no rights in
# public; the migrating role (`postgres` on Supabase) may still put a trigger on auth.users.
AUTH_ADMIN = """
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'supabase_auth_admin') THEN
        BEGIN
            CREATE ROLE supabase_auth_admin NOLOGIN NOINHERIT;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;
        END;
    END IF;
END
$$;
ALTER SCHEMA auth OWNER TO supabase_auth_admin;
ALTER TABLE auth.users OWNER TO supabase_auth_admin;
GRANT ALL ON auth.users TO CURRENT_USER;
"""

JWT = "supabase-project-jwt-secret-of-at-least-32-chars"


async def signup(conn: asyncpg.Connection, phone: str | None, **columns: object) -> uuid.UUID:
    """What Supabase Auth does when a person verifies a phone OTP: insert auth.users as its own role."""
    user = uuid.uuid4()
    names = ["id", "phone", "aud", "role", *columns]
    values = [user, phone, "authenticated", "authenticated", *columns.values()]
    marks = ", ".join(f"${n + 1}" for n in range(len(values)))
    async with conn.transaction():
        await conn.execute("SET LOCAL ROLE supabase_auth_admin")
        await conn.execute(f"INSERT INTO auth.users ({', '.join(names)}) VALUES ({marks})", *values)
    return user


@pytest.fixture
async def supabase(
    empty_database: Callable[[], Awaitable[str]],
) -> AsyncIterator[tuple[str, asyncpg.Connection]]:
    url = await empty_database()
    conn = await asyncpg.connect(url)
    await conn.execute(ROLES)
    await conn.execute(SUPABASE_LIKE)
    await conn.execute(AUTH_ADMIN)
    await migrate(url)
    try:
        yield url, conn
    finally:
        await conn.close()


async def test_a_phone_sign_up_gets_a_working_wallet(supabase: tuple[str, asyncpg.Connection]) -> None:
    url, conn = supabase
    me = await signup(conn, "254712345601")
    profile = await conn.fetchrow(
        "SELECT phone_number, mpesa_number, wallet_balance, pin_set FROM profiles WHERE id = $1", me
    )
    assert dict(profile) == {
        "phone_number": "254712345601", "mpesa_number": "254712345601",
        "wallet_balance": Decimal("0.00"), "pin_set": False,
    }  # fmt: skip
    plan = await conn.fetchrow("SELECT plan_type, status FROM subscriptions WHERE user_id = $1", me)
    assert dict(plan) == {"plan_type": "free", "status": "active"}
    history = await conn.fetch(
        "SELECT previous_balance, new_balance, reason FROM balance_history WHERE user_id = $1", me
    )
    assert [tuple(r) for r in history] == [(Decimal("0.00"), Decimal("0.00"), "opening_balance")]
    pool = await create_pool(url, min_size=1, max_size=3)
    try:
        ledger = Ledger(pool)
        # The wallet works: a payment is priced on the free plan and refused for want of money, not of a user;
        # a bank deposit can be awaited.
        with pytest.raises(LedgerError) as refused:
            await ledger.propose(
                me, ProposalRequest.build(type="send_phone", amount="100", phone="0712345602")
            )
        assert refused.value.code == "insufficient_balance"
        p = await ledger.propose(
            me, ProposalRequest.build(type="bank_to_mpesa", amount="500", bank_code="68")
        )
        assert (await ledger.confirm(p.id, me, p.version, voice_verified=True)).account_reference
        assert await check_invariants(pool, [me]) == []
        # And the person's Supabase token reads it through the app API (a 500 before: no profile).
        settings = Settings().model_copy(update={"database_url": url, "jwt_secret": SecretStr(JWT)})
        runner = web.AppRunner(create_app(settings, pool), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        try:
            host, port = runner.addresses[0][:2]
            token = mint_user_token(JWT, me, ttl_seconds=3600)
            async with (
                aiohttp.ClientSession() as http,
                http.get(f"http://{host}:{port}/v1/me", headers={"Authorization": f"Bearer {token}"}) as resp,
            ):
                assert resp.status == 200, await resp.text()
                body = await resp.json()
            assert body["wallet_balance"] == "0.00" and body["phone"] == "254712345601"
            assert body["pin_set"] is False  # the app asks for a PIN before a payment that needs one
        finally:
            await runner.cleanup()
    finally:
        await pool.close()


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("254712345611", "254712345611"),  # Supabase Auth's own form: E.164 without the +
        ("+254712345612", "254712345612"),
        ("0712 345 613", "254712345613"),
        ("+254 (0) 712-345-614", "254712345614"),
        ("0112345615", "254112345615"),
    ],
)
async def test_the_phone_is_stored_as_the_ledger_stores_it(
    supabase: tuple[str, asyncpg.Connection], typed: str, stored: str
) -> None:
    _, conn = supabase
    me = await signup(conn, typed)
    assert await conn.fetchval("SELECT phone_number FROM profiles WHERE id = $1", me) == stored


@pytest.mark.parametrize("phone", [None, "+14155550100", "0202345678", "2547123", "x" * 40])
async def test_no_wallet_without_a_kenyan_mobile_number_and_sign_up_still_succeeds(
    supabase: tuple[str, asyncpg.Connection], phone: str | None
) -> None:
    _, conn = supabase
    me = await signup(conn, phone, email=f"{uuid.uuid4().hex[:8]}@example.com")
    assert await conn.fetchval("SELECT count(*) FROM auth.users WHERE id = $1", me) == 1
    assert await conn.fetchval("SELECT count(*) FROM profiles WHERE id = $1", me) == 0


async def test_what_a_person_sends_at_sign_up_gives_them_nothing(
    supabase: tuple[str, asyncpg.Connection],
) -> None:
    """Supabase's signUp puts the client's `data` in raw_user_meta_data: it must not set money or a plan."""
    url, conn = supabase
    wishes = {"opening_balance": "1000000", "plan": "business", "pin_hash": "x", "wallet_balance": 99}
    me = await signup(conn, "254712345621", raw_user_meta_data=json.dumps(wishes))
    row = await conn.fetchrow(
        "SELECT p.wallet_balance, p.pin_set, s.plan_type FROM profiles p "
        "JOIN subscriptions s ON s.user_id = p.id WHERE p.id = $1",
        me,
    )
    assert dict(row) == {"wallet_balance": Decimal("0.00"), "pin_set": False, "plan_type": "free"}
    pool = await _pool(url)
    try:
        assert await check_invariants(pool, [me]) == []
    finally:
        await pool.close()


async def _pool(url: str) -> asyncpg.Pool:
    return await create_pool(url, min_size=1, max_size=1)


@pytest.mark.parametrize("role", ["authenticated", "anon"])
async def test_users_cannot_call_the_function_nor_change_the_trigger(
    supabase: tuple[str, asyncpg.Connection], role: str
) -> None:
    _, conn = supabase
    me = await signup(conn, "254712345631")
    owner_usable = await conn.fetchval(
        "SELECT pg_has_role($1, proowner, 'USAGE') FROM pg_proc "
        "WHERE oid = 'public.handle_new_user()'::regprocedure",
        role,
    )
    assert owner_usable is False
    definer = await conn.fetchrow(
        "SELECT prosecdef, proconfig FROM pg_proc WHERE oid = 'public.handle_new_user()'::regprocedure"
    )
    assert definer["prosecdef"] is True and any(c.startswith("search_path=") for c in definer["proconfig"])
    attempts = [
        "SELECT public.handle_new_user()",
        "SELECT public.ledger_create_profile(gen_random_uuid(), '254712345632')",
        "DROP TRIGGER ongea_pesa_on_auth_user_created ON auth.users",
        "ALTER TABLE auth.users DISABLE TRIGGER ongea_pesa_on_auth_user_created",
        "CREATE OR REPLACE FUNCTION public.handle_new_user() RETURNS TRIGGER LANGUAGE plpgsql "
        "AS $$ BEGIN RETURN NEW; END $$",
        "ALTER FUNCTION public.handle_new_user() SECURITY INVOKER",
        "CREATE TRIGGER mine AFTER INSERT ON auth.users FOR EACH ROW "
        "EXECUTE FUNCTION public.handle_new_user()",
        "INSERT INTO auth.users (id, phone) VALUES (gen_random_uuid(), '254712345633')",
        "SELECT * FROM elevenlabs_agents",
    ]
    for statement in attempts:
        tx = conn.transaction()
        await tx.start()
        try:
            await conn.execute(f"SET LOCAL ROLE {role}")
            claims = json.dumps({"sub": str(me), "role": role})
            await conn.execute("SELECT set_config('request.jwt.claims', $1, true)", claims)
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute(statement)
        finally:
            await tx.rollback()
    assert (
        await conn.fetchval(
            "SELECT tgenabled::text FROM pg_trigger WHERE tgname = 'ongea_pesa_on_auth_user_created'"
        )
        == "O"
    )


async def test_people_who_signed_up_before_the_trigger_get_their_wallet_on_migration(
    empty_database: Callable[[], Awaitable[str]], tmp_path: Path
) -> None:
    """Before 0022 a Supabase sign-up had no profile (every route answered 500): the migration makes it."""
    url = await empty_database()
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(ROLES)
        await conn.execute(SUPABASE_LIKE)
        earlier = tmp_path / "sql"
        earlier.mkdir()
        for path in sorted(migrations_dir().glob("*.sql")):
            if path.name < "0022":
                shutil.copy(path, earlier / path.name)
        await migrate(url, earlier)
        before = uuid.uuid4()
        await conn.execute("INSERT INTO auth.users (id, phone) VALUES ($1, '254712345641')", before)
        assert await conn.fetchval("SELECT count(*) FROM profiles WHERE id = $1", before) == 0
        await migrate(url)
        assert await conn.fetchval("SELECT wallet_balance FROM profiles WHERE id = $1", before) == Decimal(
            "0.00"
        )
        pool = await _pool(url)
        try:
            assert await check_invariants(pool, [before]) == []
        finally:
            await pool.close()
    finally:
        await conn.close()


async def test_user_add_goes_through_the_trigger_on_plain_postgresql(pool: asyncpg.Pool) -> None:
    phone = f"2547{uuid.uuid4().int % 10**8:08d}"
    user = await create_user(pool, phone, balance="5000", plan="basic", pin="7392")
    row = await pool.fetchrow(
        "SELECT p.wallet_balance, p.pin_set, s.plan_type FROM profiles p "
        "JOIN subscriptions s ON s.user_id = p.id WHERE p.id = $1",
        user.user_id,
    )
    assert dict(row) == {"wallet_balance": Decimal("5000.00"), "pin_set": True, "plan_type": "basic"}
    history = await pool.fetch(
        "SELECT previous_balance, new_balance, reason FROM balance_history WHERE user_id = $1", user.user_id
    )
    assert [tuple(r) for r in history] == [(Decimal("0.00"), Decimal("5000.00"), "opening_balance")]
    assert await check_invariants(pool, [user.user_id]) == []
    # The trigger is what made it: the same insert by hand makes a wallet of 0 on the free plan.
    by_hand = uuid.uuid4()
    other = f"2547{uuid.uuid4().int % 10**8:08d}"
    await pool.execute("INSERT INTO auth.users (id, phone) VALUES ($1, $2)", by_hand, other)
    assert await pool.fetchval("SELECT wallet_balance FROM profiles WHERE id = $1", by_hand) == Decimal(
        "0.00"
    )
    with pytest.raises(LedgerError) as taken:
        await create_user(pool, other, balance="10")
    assert taken.value.code == "phone_taken"
    # What user add passes is used once: a second sign-up in the same transaction gets the defaults.
    first, second = uuid.uuid4(), uuid.uuid4()
    async with pool.acquire() as conn, conn.transaction():
        wishes = json.dumps({"opening_balance": "700", "plan": "pro"})
        await conn.execute("SELECT set_config('ongea.new_user', $1, true)", wishes)
        for user_id in (first, second):
            await conn.execute(
                "INSERT INTO auth.users (id, phone) VALUES ($1, $2)",
                user_id,
                f"2547{uuid.uuid4().int % 10**8:08d}",
            )
    balances = await pool.fetch(
        "SELECT p.id, p.wallet_balance, s.plan_type FROM profiles p JOIN subscriptions s ON s.user_id = p.id "
        "WHERE p.id = ANY($1::uuid[])",
        [first, second],
    )
    assert {r["id"]: (r["wallet_balance"], r["plan_type"]) for r in balances} == {
        first: (Decimal("700.00"), "pro"), second: (Decimal("0.00"), "free"),
    }  # fmt: skip
    assert await check_invariants(pool, [first, second]) == []
