"""Holes the outside attack on API keys found (issue 23), each a test that failed before sql/0036 and the
fixes in voice_server/app_api/api_keys.py, on the real `ongea-pesa serve` and PostgreSQL:

* free text (a key's name, a payee's name, a payment's description) went to PostgreSQL unchecked: a NUL was
  a 500 with a traceback, and a right-to-left override made a payee's name read backwards;
* a `read` key on `GET /v1/events` was a 500 (the stream read the key as a JWT), and had it worked the stream
  would have outlived the key's revocation by up to an hour;
* MAX_KEYS (50 a user) was declared and never enforced: a stolen user token (no PIN needed for a read key)
  made keys without end;
* an API payment left the evidence of a correct PIN, so it reset the allowance of payments without a PIN
  (and was recorded `pin_verified`): a thief holding the phone's user token got a fresh five payments
  without a PIN each time the shop's till paid a supplier;
* after a blanket `GRANT ALL` (the Supabase habit sql/0020 guards against), a signed-in user could TRUNCATE
  `idempotency_keys` (so every retry of a payment pays again) and `api_key_events` (the owner's audit log
  of everyone), which sql/0020's triggers never reached (the tables came later);
* idempotency keys were kept for ever (nothing called idempotency_keys_prune)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal

import asyncpg
import pytest

from ledger.users import create_user
from tests.app_api.conftest import User
from tests.attack.test_grant_all_after_migrating import GRANT_ALL
from tests.attack_api.conftest import PIN, KeyClient, new_idem
from tests.ledger.conftest import fresh_phone
from tests.server_conv.wsclient import mint, tool
from tests.test_supabase_compat import _supabase_database

MakeUser = Callable[..., Awaitable[User]]


@pytest.mark.parametrize("field", ["key name", "payee name", "description"])
async def test_free_text_is_cleaned_as_contact_names_are_never_a_500(
    keys: KeyClient, make_user: MakeUser, db: asyncpg.Pool, field: str
) -> None:
    """A NUL (a 500 from PostgreSQL) and a right-to-left override ("Mama \u202eaggeW" shows as "Mama
    Weggea": a payee that reads as another on the owner's list and the payment's answer) are cleaned away,
    as in contacts' names; text of nothing but such characters is a clear 400 that changes nothing."""
    user = await make_user(plan="pro", pin=PIN)
    if field == "key name":
        made = await keys.call(
            "POST", "/v1/api-keys", user.token, body={"name": "till\x00 \u202e1", "scopes": ["read"]}
        )
        empty = await keys.call(
            "POST", "/v1/api-keys", user.token, body={"name": "\x00\u202e", "scopes": ["read"]}
        )
        stored = await db.fetch("SELECT name FROM api_keys WHERE user_id = $1", user.id)
    elif field == "payee name":
        made = await keys.call(
            "POST",
            "/v1/payees",
            user.token,
            body={"phone": fresh_phone(), "name": "till\x00 \u202e1", "pin": PIN},
        )
        empty = await keys.call(
            "POST", "/v1/payees", user.token, body={"phone": fresh_phone(), "name": "\x00\u202e", "pin": PIN}
        )
        stored = await db.fetch("SELECT name FROM trusted_payees WHERE user_id = $1", user.id)
    else:
        key = await keys.key(user, ["pay"])
        phone = await keys.payee(user, name="till 1")
        made = await keys.pay(key, new_idem(), phone, "100", description="till\x00 \u202e1")
        empty = (400, {"error": {"code": "invalid_text"}}, {})  # (an empty description is no description)
        stored = await db.fetch(
            "SELECT voice_command_text AS name FROM transactions"
            " WHERE user_id = $1 AND status = 'processing'",
            user.id,
        )
        assert made[0] == 201 and made[1]["payee"] == "till 1", made
    assert made[0] == 201, made
    assert [r["name"] for r in stored] == ["till 1"]
    assert empty[0] == 400 and empty[1]["error"]["code"] == "invalid_text", empty


async def test_a_read_key_on_the_event_stream_is_refused_not_a_500(
    keys: KeyClient, make_user: MakeUser
) -> None:
    """The live stream runs for up to an hour on the credential it was opened with: a key's revocation
    must end its access at once, so keys do not open it (a till system polls the reads)."""
    user = await make_user(plan="pro", pin=PIN)
    key = await keys.key(user, ["read"])
    status, body, _ = await keys.call("GET", "/v1/events", key)
    assert status == 403 and body["error"]["code"] == "api_key_not_allowed", (status, body)
    # The user's own token still opens it (the route works; only keys are kept out).
    async with keys.http.get(
        keys.base + "/v1/events", headers={"Authorization": f"Bearer {user.token}"}
    ) as r:
        assert r.status == 200 and r.content_type == "text/event-stream"


async def test_no_more_than_fifty_live_keys_a_user(
    keys: KeyClient, make_user: MakeUser, db: asyncpg.Pool
) -> None:
    user = await make_user(plan="business", pin=PIN)
    for n in range(50):
        status, body, _ = await keys.call(
            "POST", "/v1/api-keys", user.token, body={"name": f"k{n}", "scopes": ["read"]}
        )
        assert status == 201, body
    status, body, _ = await keys.call(
        "POST", "/v1/api-keys", user.token, body={"name": "k51", "scopes": ["read"]}
    )
    assert status == 409 and body["error"]["code"] == "too_many_keys", body
    assert await db.fetchval("SELECT count(*) FROM api_keys WHERE user_id = $1", user.id) == 50
    # A revoked key frees its place.
    first = await db.fetchval("SELECT id FROM api_keys WHERE user_id = $1 AND name = 'k0'", user.id)
    assert (await keys.call("DELETE", f"/v1/api-keys/{first}", user.token))[0] == 204
    status, body, _ = await keys.call(
        "POST", "/v1/api-keys", user.token, body={"name": "k51", "scopes": ["read"]}
    )
    assert status == 201, body


async def _voice_pay(served: str, session: dict[str, object], phone: str) -> dict[str, object]:
    """A KES 100 payment proposed and confirmed by the agent's tools (no PIN can travel that way)."""
    token = str(session["session_token"])
    status, proposed = await tool(
        served,
        token,
        "propose_transaction",
        {"session_id": session["session_id"], "type": "send_phone", "amount": "100", "phone": phone},
    )
    assert status == 200 and proposed.get("proposal_id"), proposed
    _, done = await tool(
        served,
        token,
        "confirm_transaction",
        {"session_id": session["session_id"], "proposal_id": proposed["proposal_id"], "version": 1},
    )
    return done | {"proposal_id": proposed["proposal_id"]}


async def test_an_api_payment_does_not_reset_the_allowance_of_payments_without_a_pin(
    keys: KeyClient, make_user: MakeUser, db: asyncpg.Pool, served: str
) -> None:
    """The allowance (five payments or KES 3,000 without a PIN, spec ledger.md) is reset only by a payment
    confirmed with the PIN. A key's payment to a trusted payee is exempt from the PIN, not a PIN."""
    user = await make_user(balance="20000.00", plan="pro", pin=PIN)
    key = await keys.key(user, ["pay"])
    trusted = await keys.payee(user)
    session = await mint(served, user.token)
    shop = fresh_phone()
    for _ in range(5):  # the allowance, spent by a voice agent holding the phone's token
        done = await _voice_pay(served, session, shop)
        assert done.get("outcome") == "committed", done
    sixth = await _voice_pay(served, session, shop)
    assert sixth.get("outcome") != "committed" and "pin_required" in json.dumps(sixth), sixth

    status, body, _ = await keys.pay(key, new_idem(), trusted, "100")  # the shop's till pays a supplier
    assert status == 201, body
    api_tx = uuid.UUID(body["transaction_id"])

    # The thief tries again, in a new voice session: the allowance is still spent.
    again = await _voice_pay(served, await mint(served, user.token), shop)
    assert again.get("outcome") != "committed" and "pin_required" in json.dumps(again), again
    assert await db.fetchval("SELECT pin_verified FROM transactions WHERE id = $1", api_tx) is False
    paid = await db.fetchval(
        "SELECT count(*) FROM transactions WHERE user_id = $1 AND status IN ('processing', 'completed')",
        user.id,
    )
    assert paid == 6  # five by voice, one by the key
    left = await db.fetchrow("SELECT no_pin_count, no_pin_amount FROM profiles WHERE id = $1", user.id)
    assert (left["no_pin_count"], left["no_pin_amount"]) == (5, Decimal("500.00")), dict(left)


@pytest.fixture
async def granted(empty_database: Callable[[], Awaitable[str]]) -> AsyncIterator[asyncpg.Pool]:
    """A Supabase-like database migrated, then the blanket GRANT ALL on tables, sequences and functions."""
    url, conn = await _supabase_database(empty_database)
    await conn.execute(GRANT_ALL)
    await conn.close()
    pool = await asyncpg.create_pool(url, min_size=1, max_size=2)
    assert pool is not None
    yield pool
    await pool.close()


async def _as(pool: asyncpg.Pool, role: str, user: uuid.UUID, statement: str) -> str:
    async with pool.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        try:
            await conn.execute(f"SET LOCAL ROLE {role}")
            await conn.execute(
                "SELECT set_config('request.jwt.claims', $1, true)",
                json.dumps({"sub": str(user), "role": role}),
            )
            return f"done: {await conn.execute(statement)}"
        except asyncpg.InsufficientPrivilegeError:
            return "refused"
        except asyncpg.PostgresError as exc:
            return f"error: {type(exc).__name__}: {exc}"
        finally:
            await tx.rollback()


@pytest.mark.parametrize("role", ["authenticated", "anon"])
async def test_after_grant_all_nobody_truncates_idempotency_keys_or_the_audit_log(
    granted: asyncpg.Pool, role: str
) -> None:
    user = (await create_user(granted, fresh_phone(), balance=Decimal("100"), plan="pro", pin=PIN)).user_id
    await granted.execute(
        "INSERT INTO idempotency_keys (user_id, key, request_hash, created_at, expires_at)"
        " VALUES ($1, 'k', 'h', now(), now() + interval '1 day')",
        user,
    )
    await granted.execute("INSERT INTO api_key_events (user_id, event) VALUES ($1, 'created')", user)
    outcomes = {
        s: await _as(granted, role, user, s)
        for s in (
            "TRUNCATE idempotency_keys",
            "TRUNCATE api_key_events",
            "TRUNCATE api_keys CASCADE",
            "TRUNCATE trusted_payees CASCADE",
        )
    }
    assert set(outcomes.values()) == {"refused"}, outcomes
    assert await granted.fetchval("SELECT count(*) FROM idempotency_keys") == 1
    assert await granted.fetchval("SELECT count(*) FROM api_key_events") == 1


async def test_idempotency_keys_past_their_day_are_pruned_by_the_sweeper(
    keys: KeyClient, make_user: MakeUser, db: asyncpg.Pool, attack_url: str
) -> None:
    """Keys are kept for 24 hours, and idempotency_keys_prune existed, but nothing called it: every request
    of every key (refused ones too, a key may make 10,000 a minute) left a row with its answer (phone
    numbers, balances) for ever. `ongea-pesa sweep` (and the sweeper in `serve`) now prunes them."""
    user = await make_user(plan="pro", pin=PIN)
    key = await keys.key(user, ["pay"])
    for _ in range(3):  # refused payments (no trusted payee) still keep their key and answer
        status, body, _ = await keys.pay(key, new_idem(), fresh_phone())
        assert status == 403, body
    await db.execute(
        "UPDATE idempotency_keys SET created_at = now() - interval '25 hours',"
        " expires_at = now() - interval '1 hour' WHERE user_id = $1",
        user.id,
    )
    live = new_idem()
    assert (await keys.pay(key, live, fresh_phone()))[0] == 403
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "voice_server.cli", "sweep", "--once", "--database-url", attack_url],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    left = await db.fetch("SELECT key FROM idempotency_keys WHERE user_id = $1", user.id)
    assert [r["key"] for r in left] == [live]
