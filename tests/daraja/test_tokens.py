"""Finding 1: one Daraja token for every process, and a refused token refreshed and retried on any of the
codes Daraja uses for it (never read as the payment's refusal)."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import asyncpg
import pytest

from daraja_sim import Simulator
from ledger.daraja import client as api
from ledger.daraja.client import DarajaClient
from ledger.daraja.tokens import DatabaseTokenStore, app_key
from ledger.db import create_pool
from tests.mpesa.conftest import Harness, sim_config

COMMON: dict[str, Any] = {"result_url": "https://e.test/r", "timeout_url": "https://e.test/t", "remarks": "r"}


async def take_a_token_elsewhere(sim: Simulator) -> None:
    """What another process with its own token does: Daraja then invalidates every older token."""
    async with DarajaClient(sim_config(sim)) as other:
        await other.access_token()


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        (api.STK_PUSH_PATH, 404, "404.001.03"),
        (api.B2C_PATH, 401, "401.002.01"),
        (api.B2B_PATH, 400, "400.003.01"),
        (api.STATUS_PATH, 400, "400.003.01"),
    ],
)
async def test_the_simulator_reports_a_stale_token_as_each_api_does(
    sim: Simulator, path: str, status: int, code: str
) -> None:
    async with DarajaClient(sim_config(sim)) as c:
        stale = await c.access_token()
        await take_a_token_elsewhere(sim)
        async with c.session.post(
            sim.base_url + path, json={}, headers={"Authorization": f"Bearer {stale}"}
        ) as resp:
            assert resp.status == status
            assert (await resp.json())["errorCode"] == code


async def test_every_token_error_code_is_refreshed_and_retried_once(
    sim: Simulator, client: DarajaClient
) -> None:
    await client.access_token()
    await take_a_token_elsewhere(sim)
    stk = await client.stk_push(
        amount=Decimal("10"), phone="0712345678", callback_url="http://127.0.0.1:9/cb",
        account_reference="OngeaPesa", description="Top-up",
    )  # fmt: skip
    assert stk.ResponseCode == "0"  # 404.001.03 was a token error, not a refusal of the push
    await take_a_token_elsewhere(sim)
    await client.b2c(originator_conversation_id="tok-b2c", amount=Decimal("10"), phone="0712345678", **COMMON)
    await take_a_token_elsewhere(sim)
    await client.b2b(
        command="BusinessPayBill", amount=Decimal("10"), party_b="888880", account_reference="A1", **COMMON
    )
    await take_a_token_elsewhere(sim)
    await client.transaction_status(originator_conversation_id="tok-b2c", **COMMON)
    assert sim.token_refusals == 4
    assert client.tokens.fetches == 5  # the first token and one refresh per refusal, never more
    assert len(sim.payouts) == 2


async def test_processes_share_one_token_through_the_database(database_url: str, sim: Simulator) -> None:
    """Two processes (two pools, two clients) sending at once: one token fetched, none refused."""
    pools = [await create_pool(database_url, min_size=1, max_size=5) for _ in range(2)]
    config = sim_config(sim)
    key = app_key(config.base_url, config.consumer_key + "-share")  # a row of this test's own
    clients = [DarajaClient(config, token_cache=DatabaseTokenStore(p, key)) for p in pools]
    try:
        await asyncio.gather(
            *(
                c.b2c(originator_conversation_id=f"share-{i}-{n}", amount=Decimal("10"), phone="0712345678",
                      **COMMON)
                for i, c in enumerate(clients)
                for n in range(10)
            )
        )  # fmt: skip
        assert sim.tokens_issued == 1 and sim.token_refusals == 0
        assert len(sim.payouts) == 20
    finally:
        for c in clients:
            await c.close()
        for p in pools:
            await p.close()


async def test_a_token_refused_everywhere_is_refreshed_once_for_all(
    pool: asyncpg.Pool, sim: Simulator
) -> None:
    config = sim_config(sim)
    key = app_key(config.base_url, config.consumer_key + "-refused")
    stores = [DatabaseTokenStore(pool, key) for _ in range(3)]  # three processes' stores
    clients = [DarajaClient(config, token_cache=s) for s in stores]
    try:
        await clients[0].access_token()
        await take_a_token_elsewhere(sim)  # a process outside the database: everyone's token is refused
        issued = sim.tokens_issued
        await asyncio.gather(
            *(
                c.b2c(originator_conversation_id=f"ref-{i}-{n}", amount=Decimal("10"), phone="0712345678",
                      **COMMON)
                for i, c in enumerate(clients)
                for n in range(5)
            )
        )  # fmt: skip
        assert sim.tokens_issued == issued + 1  # one refresh, shared
        assert sum(s.fetches for s in stores) == 2
        assert len(sim.payouts) == 15
    finally:
        for c in clients:
            await c.close()


async def test_token_row_refreshes_at_about_fifty_minutes_and_is_for_the_server_only(
    pool: asyncpg.Pool, sim: Simulator
) -> None:
    config = sim_config(sim)
    key = app_key(config.base_url, config.consumer_key + "-row")
    async with DarajaClient(config, token_cache=DatabaseTokenStore(pool, key)) as c:
        token = await c.access_token()  # the simulator sends expires_in as a string, as Daraja does
    row = await pool.fetchrow(
        "SELECT access_token, extract(epoch FROM refresh_at - fetched_at) AS refresh,"
        " extract(epoch FROM expires_at - fetched_at) AS expires FROM daraja_tokens WHERE app = $1",
        key,
    )
    assert row["access_token"] == token
    assert 2900 <= row["refresh"] <= 3000 and abs(row["expires"] - 3599) < 1
    assert config.consumer_key not in key  # the row is named by a digest, not the consumer key
    for role in ("authenticated", "anon"):
        allowed = await pool.fetchval("SELECT has_table_privilege($1, 'daraja_tokens', 'SELECT')", role)
        assert allowed is False


async def test_a_b2b_payout_survives_a_token_taken_by_another_process(harness: Harness) -> None:
    """Before: B2B's 400.003.01 read as a refusal, and the payout was refunded although nothing was wrong."""
    user = await harness.user("5000.00")
    await harness.service.client.access_token()  # type: ignore[union-attr]
    await take_a_token_elsewhere(harness.sim)
    tx = await harness.confirmed(user, "paybill", "1200", paybill="888880", account="INV42")
    row = await harness.settled(tx)
    assert row["status"] == "completed"
    assert len(harness.sim.payouts_for(str(tx))) == 1
    assert await harness.wallet(user) == Decimal("5000.00") - 1200 - row["fee"]


async def test_stk_top_up_survives_a_token_taken_by_another_process(harness: Harness) -> None:
    user = await harness.user("0.00")
    await harness.service.client.access_token()  # type: ignore[union-attr]
    await take_a_token_elsewhere(harness.sim)
    async with harness.http.post(
        f"{harness.base_url}/v1/topups",
        json={"amount": 300},
        headers={"Authorization": f"Bearer {harness.token(user)}"},
    ) as resp:
        assert resp.status == 201, await resp.text()

    async def credited() -> bool:
        return await harness.wallet(user) == Decimal("300.00")

    await harness.wait_for(credited)
    assert harness.sim.token_refusals >= 1
