"""A Daraja client written by other people, `mpesakit` (PyPI), against the simulator, run as its README
shows with one line moving its base URL: every API it has that we simulate (token, STK push and query, B2C,
B2B pay bill and buy goods, C2B URL registration, Transaction Status, Account Balance, Reversal) is accepted
and every answer and result callback is read by mpesakit's own models. mpesakit 2.2 has no C2B simulate.

Where mpesakit is wrong by the portal the simulator refuses it as Daraja would, and the test says so:
its STK Timestamp is the machine's local time (UTC on a server), not Nairobi's, so the push is refused
`Bad Request - Invalid Timestamp`; and it sends the Lipa Na M-Pesa passkey itself in the request body
(`"Passkey": ...`), a secret Daraja neither needs nor asks for (Daraja ignores unknown fields, so this leak
is not refused: the test shows it is sent).

mpesakit's result-callback models are themselves wrong by the portal for B2C, Transaction Status and
Reversal: they want `ResultParameters` to be a list (the portal's samples, and Daraja, send
`{"ResultParameter": [...]}`) and Reversal's `ResultCode` a string (the sample sends 0). For those the test
checks that mpesakit refuses our callback exactly as it refuses the portal's own sample; every other
callback (STK, Account Balance, a failed B2C) it reads.

Before (issue 27): only the token and the C2B registration were accepted.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiohttp import web
from mpesakit import MpesaClient
from mpesakit.account_balance.schemas import AccountBalanceResultCallback
from mpesakit.b2c.schemas import B2CCommandIDType
from mpesakit.errors import MpesaApiException
from mpesakit.mpesa_express.schemas import StkPushSimulateCallback
from pydantic import ValidationError

from daraja_sim import Simulator
from ledger.daraja import client as api
from ledger.daraja.credentials import security_credential

NAIROBI = ZoneInfo("Africa/Nairobi")
PHONE = "254708374149"


SAMPLES = Path(__file__).parent / "portal_samples"


LOADED = {f.name: json.loads(f.read_text()) for f in SAMPLES.glob("*.json")}


def portal_callback(name: str, index: int = 0) -> Any:
    return LOADED[name]["callbacks"][index]["body"]


def read_as_portal_sample(parse: Callable[[Any], Any], ours: Any, sample: Any) -> bool:
    """mpesakit's model reads our callback exactly when it reads the portal's sample of it; True when read."""

    def verdict(body: Any) -> str:
        try:
            parse(body)
        except ValidationError as exc:
            return ",".join(sorted(".".join(map(str, e["loc"])) for e in exc.errors()))
        return "read"

    assert verdict(ours) == verdict(sample)
    return verdict(ours) == "read"


class Receiver:
    def __init__(self) -> None:
        self.bodies: dict[str, list[Any]] = {}
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.bodies.setdefault(request.match_info["name"], []).append(await request.json())
        return web.json_response({"ResultCode": 0, "ResultDesc": "Accepted"})


@pytest.fixture
async def rig() -> AsyncIterator[tuple[Simulator, MpesaClient, Receiver, str]]:
    sim = Simulator(consumer_key="kit-key", consumer_secret="kit-secret", callback_delay=0.0)
    await sim.start()
    receiver = Receiver()
    app = web.Application()
    app.router.add_post("/cb/{name}", receiver.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    receiver.url = f"http://{host}:{port}/cb"
    client = MpesaClient(consumer_key="kit-key", consumer_secret="kit-secret", environment="sandbox")
    client.http_client.base_url = sim.base_url  # the one line: Daraja is the simulator
    yield sim, client, receiver, security_credential(sim.initiator_password, sim.certificate)
    await runner.cleanup()
    await sim.stop()


def nairobi_password(sim: Simulator) -> tuple[str, str]:
    timestamp = dt.datetime.now(NAIROBI).strftime("%Y%m%d%H%M%S")
    return timestamp, base64.b64encode(f"{sim.shortcode}{sim.passkey}{timestamp}".encode()).decode()


async def test_mpesakit_stk_push_and_query(rig: tuple[Simulator, MpesaClient, Receiver, str]) -> None:
    sim, client, receiver, _ = rig
    push: dict[str, Any] = dict(
        business_short_code=int(sim.shortcode),
        transaction_type="CustomerPayBillOnline",
        amount=250,
        party_a=PHONE,
        party_b=sim.shortcode,
        phone_number=PHONE,
        callback_url=receiver.url + "/stk",
        account_reference="Order-001",
        transaction_desc="Payment",
    )
    if dt.datetime.now().astimezone().utcoffset() != dt.timedelta(hours=3):
        # As its README runs it: mpesakit stamps the machine's local time, not Nairobi's.
        with pytest.raises(MpesaApiException) as refused:
            await asyncio.to_thread(client.stk_push, passkey=sim.passkey, **push)
        assert refused.value.error.raw_response["errorMessage"] == "Bad Request - Invalid Timestamp"
        assert not sim.stk
        sent = sim.requests_to(api.STK_PUSH_PATH)[-1].body
        assert sent["Passkey"] == sim.passkey  # mpesakit sends the passkey itself along
    timestamp, password = nairobi_password(sim)
    answer = await asyncio.to_thread(client.stk_push, timestamp=timestamp, password=password, **push)
    assert answer.is_successful() and answer.CheckoutRequestID in sim.stk
    await sim.idle()
    [callback] = receiver.bodies["stk"]
    parsed = client.process_stk_callback(callback)
    assert isinstance(parsed, StkPushSimulateCallback) and parsed.is_successful  # a property here
    timestamp, password = nairobi_password(sim)
    queried = await asyncio.to_thread(
        client.stk_query,
        business_short_code=int(sim.shortcode),
        checkout_request_id=answer.CheckoutRequestID,
        timestamp=timestamp,
        password=password,
    )
    assert str(queried.ResultCode) == "0"


async def test_mpesakit_payouts_status_balance_and_reversal(
    rig: tuple[Simulator, MpesaClient, Receiver, str],
) -> None:
    sim, client, receiver, credential = rig
    b2c = await asyncio.to_thread(
        client.b2c.send_payment,
        originator_conversation_id=str(uuid.uuid4()),
        initiator_name="testapi",
        security_credential=credential,
        command_id=B2CCommandIDType.BusinessPayment,
        amount=100,
        party_a="600000",
        party_b=PHONE,
        remarks="Salary",
        queue_timeout_url=receiver.url + "/timeout",
        result_url=receiver.url + "/b2c",
        occasion="Payday",
    )
    assert b2c.is_successful()
    b2b: dict[str, Any] = dict(
        initiator="testapi",
        security_credential=credential,
        amount=300,
        party_a=600000,
        account_reference="ACC1",
        requester=PHONE,
        remarks="OK",
        queue_timeout_url=receiver.url + "/timeout",
    )
    paybill = await asyncio.to_thread(
        client.b2b.paybill, party_b=888880, result_url=receiver.url + "/b2b", **b2b
    )
    buygoods = await asyncio.to_thread(
        client.b2b.buygoods, party_b=123456, result_url=receiver.url + "/b2b", **b2b
    )
    assert paybill.is_successful() and buygoods.is_successful()
    assert {p.command for p in sim.payouts.values()} == {
        "BusinessPayment",
        "BusinessPayBill",
        "BusinessBuyGoods",
    }
    assert all(p.success for p in sim.payouts.values())  # the credential decrypted: paid
    await sim.idle()
    [b2c_result] = receiver.bodies["b2c"]
    # mpesakit wants ResultParameters as a list: it refuses the portal's own B2C result sample too.
    assert not read_as_portal_sample(client.process_b2c_callback, b2c_result, portal_callback("b2c.json"))
    assert len(receiver.bodies["b2b"]) == 2
    receipt = b2c_result["Result"]["TransactionID"]

    status = await asyncio.to_thread(
        client.transactions.query_status,
        initiator="testapi",
        security_credential=credential,
        transaction_id=receipt,
        party_a=600000,
        identifier_type=4,
        result_url=receiver.url + "/status",
        queue_timeout_url=receiver.url + "/timeout",
        command_id="TransactionStatusQuery",
        remarks="OK",
    )
    assert status.is_successful()
    balance = await asyncio.to_thread(
        client.balance.query,
        initiator="testapi",
        security_credential=credential,
        command_id="AccountBalance",
        party_a=600000,
        identifier_type=4,
        remarks="OK",
        result_url=receiver.url + "/balance",
        queue_timeout_url=receiver.url + "/timeout",
    )
    assert balance.is_successful()
    reversal = await asyncio.to_thread(
        client.reversal.reverse,
        initiator="testapi",
        security_credential=credential,
        transaction_id=receipt,
        amount=100,
        receiver_party=600000,
        result_url=receiver.url + "/reversal",
        queue_timeout_url=receiver.url + "/timeout",
        remarks="wrong number",
    )
    assert reversal.is_successful()
    await sim.idle()
    [status_result] = receiver.bodies["status"]
    assert str(status_result["Result"]["ResultCode"]) == "0"
    assert not read_as_portal_sample(
        client.process_transactions_callback, status_result, portal_callback("status.json")
    )
    [balance_result] = receiver.bodies["balance"]
    assert read_as_portal_sample(
        client.process_account_balance_callback, balance_result, portal_callback("balance.json")
    )
    assert isinstance(client.process_account_balance_callback(balance_result), AccountBalanceResultCallback)
    [reversed_result] = receiver.bodies["reversal"]
    assert str(reversed_result["Result"]["ResultCode"]) == "0"
    assert not read_as_portal_sample(
        client.process_reversal_callback, reversed_result, portal_callback("reversal.json")
    )
    assert "timeout" not in receiver.bodies


async def test_mpesakit_c2b_registration(rig: tuple[Simulator, MpesaClient, Receiver, str]) -> None:
    sim, client, receiver, _ = rig
    answer = await asyncio.to_thread(
        client.c2b.register_url,
        short_code=600000,
        response_type="Completed",
        confirmation_url=receiver.url + "/confirmation",
        validation_url=receiver.url + "/validation",
    )
    assert str(answer.ResponseCode) == "0"
    assert sim.c2b_urls["600000"]["ConfirmationURL"] == receiver.url + "/confirmation"
