"""Issue 20 (Daraja, second review): each point against the simulator over real HTTP and real PostgreSQL.

Each test names what happened before its fix. The simulator now answers as Daraja does, so these fail on
the old client: a throttled B2B payout (HTTP 500 `500.003.02`) was parked dead and never paid; a refused
STK push (`500.001.1001`) was taken for one that may have reached the phone; a flat queue timeout was
recorded as malformed; `500.003.1001` from registerurl was always "already registered".
"""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import pytest
from pydantic import SecretStr

from daraja_sim import Behaviour
from ledger.daraja import client as api
from ledger.daraja.client import DarajaClient, DarajaRejected
from tests.mpesa.conftest import Harness, sim_config
from voice_server.callback_sources import allowed

SPIKE = Behaviour(http_error=500, error_code="500.003.02", error_message="System is busy. Please try again.")
QUOTA = Behaviour(http_error=500, error_code="500.003.03", error_message="Quota Violation")


async def outbox(harness: Harness, tx: object) -> dict[str, object]:
    row = await harness.pool.fetchrow("SELECT * FROM payout_outbox WHERE transaction_id = $1", tx)
    assert row is not None
    return dict(row)


@pytest.mark.parametrize("throttled", [SPIKE, QUOTA], ids=["spike_arrest", "quota"])
async def test_a_throttled_b2b_payout_is_sent_again_and_paid_once(
    harness: Harness, throttled: Behaviour
) -> None:
    """Before: HTTP 500 read as "may have been sent": the B2B payout was parked dead, no ConversationID."""
    user = await harness.user("5000.00")
    harness.sim.add_rule(throttled, path=api.B2B_PATH, amount=1410, times=2)
    tx = await harness.confirmed(user, "paybill", "1410", paybill="888880", account="ACC9")
    row = await harness.settled(tx, limit=60)
    assert row["status"] == "completed"
    assert len(harness.sim.payouts_for(str(tx))) == 1  # paid once
    assert len(harness.sim.sent_payouts(str(tx))) == 3  # two throttled, then accepted
    assert (await outbox(harness, tx))["status"] != "dead"
    assert await harness.wallet(user) < Decimal("5000.00") - Decimal("1400")


async def test_every_request_kind_is_sent_again_when_throttled(harness: Harness) -> None:
    """STK push, B2C, status query: a throttled request is not accepted, so sending it again is safe."""
    user = await harness.user("5000.00")
    harness.sim.add_rule(SPIKE, path=api.STK_PUSH_PATH, amount=333, times=1)
    status, body = await harness.topup(user, 333)
    assert status == 201, body  # before: 502 mpesa_unavailable, the top-up left "may have been sent"
    harness.sim.add_rule(QUOTA, path=api.B2C_PATH, amount=1420, times=1)
    harness.sim.add_rule(Behaviour(callback="none"), path=api.B2C_PATH, amount=1420)  # settled by a query
    harness.sim.add_rule(SPIKE, path=api.STATUS_PATH, times=1)
    tx = await harness.confirmed(user, "send_phone", "1420", phone="0712345678")
    row = await harness.settled(tx, limit=60)
    assert row["status"] == "completed"
    assert len(harness.sim.payouts_for(str(tx))) == 1
    assert len(harness.sim.requests_to(api.STATUS_PATH)) >= 2  # the throttled one, then the answered one


async def test_a_refused_stk_push_is_a_refusal_not_a_maybe(harness: Harness) -> None:
    """`500.001.1001` on a push ("Unable to lock subscriber", "Wrong credentials", "Merchant does not
    exist") means no prompt reached the phone. Before: kept pending as a push that may have been sent."""
    user = await harness.user("100.00")
    harness.sim.add_rule(
        Behaviour(
            http_error=500,
            error_code="500.001.1001",
            error_message="Unable to lock subscriber, a transaction is already in process for the "
            "current subscriber",
        ),
        path=api.STK_PUSH_PATH,
        amount=444,
        times=1,
    )
    status, _ = await harness.topup(user, 444)
    assert status == 502
    row = await harness.pool.fetchrow(
        "SELECT status, push_unknown_since FROM mpesa_transactions WHERE user_id = $1 AND amount = 444", user
    )
    assert row is not None and row["status"] == "failed" and row["push_unknown_since"] is None


async def test_a_wrong_stk_party_b_is_accepted_then_fails_with_2028(harness: Harness) -> None:
    """As Daraja: the push is accepted and its callback fails (2028). Before: the simulator refused it at
    once with a 400 that Daraja does not send, hiding how the top-up really ends."""
    async with DarajaClient(sim_config(harness.sim, stk_till="5555555")) as wrong:
        answer = await wrong.stk_push(
            amount=Decimal(50), phone="0712345678", callback_url=harness.callback_base + "/stk",
            account_reference="TUWRONG", description="Top-up",
        )  # fmt: skip
    await harness.sim.idle()
    stk = harness.sim.stk[answer.CheckoutRequestID]
    assert not stk.success and stk.result_code == 2028


async def test_a_flat_queue_timeout_brings_the_status_query_forward(harness: Harness) -> None:
    """Daraja posts the original request, flat, to the QueueTimeOutURL. Before: recorded as malformed and
    nothing happened until the reconciliation timer."""
    assert harness.service.payouts is not None
    payouts = harness.service.payouts
    payouts.config = dataclasses.replace(payouts.config, reconcile_after=3600)  # only the timeout can ask
    user = await harness.user("5000.00")
    harness.sim.add_rule(Behaviour(callback="queue_timeout"), path=api.B2C_PATH, amount=1430)
    tx = await harness.confirmed(user, "send_phone", "1430", phone="0712345678")
    row = await harness.settled(tx, limit=30)
    assert row["status"] == "completed"
    outcomes = await harness.pool.fetch(
        "SELECT kind, outcome FROM mpesa_callbacks WHERE transaction_id = $1 OR payout_id = $1", tx
    )
    assert ("payout_timeout", "status_check_scheduled") in {(r["kind"], r["outcome"]) for r in outcomes}


async def test_registerurl_internal_error_is_not_already_registered(harness: Harness) -> None:
    """`500.003.1001` is also a plain internal error. Before: any 500.003.1001 counted as registered, so
    URLs never registered stayed unregistered and every deposit confirmation was lost."""
    c2b = harness.service.c2b
    assert c2b is not None
    harness.sim.c2b_urls.clear()
    c2b.registered = False
    harness.sim.add_rule(
        Behaviour(http_error=500, error_code="500.003.1001", error_message="Internal Server Error"),
        path="/mpesa/c2b/",
        times=1,
    )
    await c2b.register_urls()
    assert not c2b.registered and not harness.sim.c2b_urls
    await c2b.register_urls()
    assert c2b.registered and harness.settings.daraja_c2b_shortcode in harness.sim.c2b_urls
    harness.sim.c2b_register_once = True  # production: a repeat answers 500.003.1001 "already registered"
    c2b.registered = False
    await c2b.register_urls()
    assert c2b.registered


async def test_pull_transactions_is_registered_once_per_shortcode(harness: Harness) -> None:
    """Before: never registered, so in production Pull reconciliation could not run."""
    c2b = harness.service.c2b
    assert c2b is not None
    assert set(harness.sim.pull_registered) == c2b.pull_shortcodes()
    c2b.pull_registered.clear()
    await c2b.register_pull()  # a restart: Daraja answers 1001 "already registered", which is done
    assert c2b.pull_registered == c2b.pull_shortcodes()
    assert len(harness.sim.requests_to("/pulltransactions/v1/register")) == 2 * len(c2b.pull_shortcodes())


async def test_registerurl_is_v2_by_default(harness: Harness) -> None:
    assert harness.settings.daraja_c2b_register_version == "v2"
    assert harness.sim.requests_to("/mpesa/c2b/v2/registerurl")


async def test_b2pochi_spells_occassion_and_remarks_are_never_cut(client: DarajaClient) -> None:
    await client.b2pochi(
        originator_conversation_id="pochi-1", amount=Decimal(10), phone="0712345678",
        result_url="https://e.test/r", timeout_url="https://e.test/t", remarks="Pochi", occasion="Lunch",
    )  # fmt: skip
    with pytest.raises(DarajaRejected, match="Remarks"):
        await client.b2c(
            originator_conversation_id="b2c-long", amount=Decimal(10), phone="0712345678",
            result_url="https://e.test/r", timeout_url="https://e.test/t", remarks="x" * 101,
        )  # fmt: skip
    with pytest.raises(DarajaRejected, match="Occassion"):
        await client.b2pochi(
            originator_conversation_id="pochi-2", amount=Decimal(10), phone="0712345678",
            result_url="https://e.test/r", timeout_url="https://e.test/t", remarks="ok", occasion="y" * 101,
        )  # fmt: skip


async def test_b2pochi_request_carries_the_portal_spelling(harness: Harness) -> None:
    user = await harness.user("5000.00")
    tx = await harness.confirmed(user, "buy_goods_pochi", "1440", phone="0712345678")
    await harness.settled(tx, limit=30)
    [sent] = harness.sim.sent_payouts(str(tx))
    assert "Occassion" in sent.body and "Occasion" not in sent.body


def stk_success(checkout: str) -> dict[str, object]:
    return {
        "Body": {
            "stkCallback": {
                "MerchantRequestID": "1-2-3",
                "CheckoutRequestID": checkout,
                "ResultCode": 0,
                "ResultDesc": "The service request is processed successfully.",
            }
        }
    }


async def test_callbacks_from_outside_the_allowlist_are_refused_before_anything_is_recorded(
    harness: Harness,
) -> None:
    """Before: the secret path alone guarded callbacks that credit money (issue 20, 8)."""
    harness.settings.mpesa_callback_allowlist = "196.201.214.200/32"
    before = await harness.pool.fetchval("SELECT count(*) FROM mpesa_callbacks")
    for kind in ("stk", "payout/result", "c2b/confirmation"):
        status, body = await harness.post_callback(kind, stk_success("ws_CO_forged"))
        assert status == 403, (kind, body)
    # A forged X-Forwarded-For from a peer that is not a trusted proxy changes nothing.
    async with harness.http.post(
        harness.callback_base + "/stk", json=stk_success("ws_CO_forged"),
        headers={"X-Forwarded-For": "196.201.214.200"},
    ) as resp:  # fmt: skip
        assert resp.status == 403
    assert await harness.pool.fetchval("SELECT count(*) FROM mpesa_callbacks") == before
    # Behind a trusted proxy (here: this machine), the address it forwards is the source.
    harness.settings.mpesa_trusted_proxies = "127.0.0.1"
    async with harness.http.post(
        harness.callback_base + "/stk", json=stk_success("ws_CO_forwarded"),
        headers={"X-Forwarded-For": "10.1.1.1, 196.201.214.200"},
    ) as resp:  # fmt: skip
        assert resp.status == 200
    harness.settings.mpesa_callback_allowlist = "safaricom"
    async with harness.http.post(
        harness.callback_base + "/stk", json=stk_success("ws_CO_forwarded2"),
        headers={"X-Forwarded-For": "196.201.212.69, 10.1.1.1"},  # the proxy appended a hop it does not trust
    ) as resp:  # fmt: skip
        assert resp.status == 403
    harness.settings.mpesa_callback_allowlist = ""
    harness.settings.mpesa_trusted_proxies = ""


async def test_the_previous_callback_secret_is_accepted_while_urls_move(harness: Harness) -> None:
    """A changed secret leaves C2B URLs registered under the old one (production registers once): with
    ONGEA_MPESA_PREVIOUS_CALLBACK_SECRET the old paths still work; any other secret stays a 404."""
    old = "an-older-callback-secret-0123456789"
    harness.settings.mpesa_previous_callback_secret = SecretStr(old)
    base = harness.callback_base.replace(harness.settings.callback_secret(), old)
    async with harness.http.post(base + "/stk", json=stk_success("ws_CO_old_path")) as resp:
        assert resp.status == 200
    wrong = harness.callback_base.replace(harness.settings.callback_secret(), "not-the-secret-at-all-0000")
    async with harness.http.post(wrong + "/stk", json=stk_success("ws_CO_wrong")) as resp:
        assert resp.status == 404
    harness.settings.mpesa_previous_callback_secret = None
    async with harness.http.post(base + "/stk", json=stk_success("ws_CO_old_path2")) as resp:
        assert resp.status == 404


async def test_a_second_push_while_the_first_waits_is_refused_and_fails_cleanly(harness: Harness) -> None:
    """Daraja locks a subscriber with a prompt open: the second push is HTTP 500 500.001.1001 "Unable to
    lock subscriber". Before: the simulator accepted it (hiding the case) and the client would have read
    the 500 as "maybe sent", leaving a top-up pending for a prompt that never went out."""
    harness.sim.lock_subscriber = True
    user = await harness.user("100.00")
    harness.sim.add_rule(Behaviour(delay=3.0), path=api.STK_PUSH_PATH, amount=501, times=1)
    assert (await harness.topup(user, 501))[0] == 201
    status, _ = await harness.topup(user, 502)
    assert status == 502
    second = await harness.pool.fetchrow(
        "SELECT status, push_unknown_since, error_message FROM mpesa_transactions"
        " WHERE user_id = $1 AND amount = 502",
        user,
    )
    assert second is not None and second["status"] == "failed" and second["push_unknown_since"] is None
    assert "Unable to lock subscriber" in second["error_message"]
    await harness.wait_for(lambda: _credited(harness, user, Decimal("601.00")), limit=20)


async def _credited(harness: Harness, user: object, balance: Decimal) -> bool:
    return await harness.wallet(user) == balance  # type: ignore[arg-type]


def test_the_source_address_is_read_only_through_trusted_proxies() -> None:
    assert allowed("::ffff:196.201.214.200", None, "safaricom", "")  # IPv4 on a dual-stack socket
    assert not allowed("10.0.0.1", "196.201.214.200", "safaricom", "")  # an untrusted peer names nobody
    assert allowed("10.0.0.1", "1.1.1.1, 196.201.214.200", "safaricom", "10.0.0.0/8")
    assert not allowed("10.0.0.1", "196.201.214.200, 1.1.1.1", "safaricom", "10.0.0.0/8")  # forged left part
    assert not allowed("10.0.0.1", "10.0.0.2", "safaricom", "10.0.0.0/8")  # only proxies: no caller known
    assert allowed("1.2.3.4", None, "", "")  # no allowlist: off
    with pytest.raises(ValueError, match="not an address"):
        allowed("1.2.3.4", None, "safaricom, not-an-ip", "")
