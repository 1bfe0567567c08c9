"""Safaricom's own samples (tests/daraja/portal_samples/, each with its portal page named) against the
simulator and our client: every request sample the simulator must accept is accepted, every refusal is the
one the page's error table gives, every callback sample is read by our client's models, and the
simulator's own callbacks have the samples' shape, field for field and type for type.

Before (issue 27): the simulator checked requests with our client's outgoing models, so it refused the STK
sample (BusinessShortCode sent as a number), the B2Pochi sample (`Occassion`), and the status sample; its
B2B result had a single ReferenceItem and amounts as numbers; unknown paths answered plain text.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from daraja_sim import Behaviour, Simulator
from ledger.c2b import parse_callback
from ledger.daraja import client as api
from ledger.daraja.credentials import security_credential
from ledger.daraja.models import (
    ResultEnvelope,
    StkCallbackEnvelope,
    account_balances,
    callback_amount,
)

SAMPLES = Path(__file__).parent / "portal_samples"
LOADED: dict[str, dict[str, Any]] = {
    f.name: json.loads(f.read_text()) for f in sorted(SAMPLES.glob("*.json"))
}
NAMES = sorted(LOADED)


def sample(name: str) -> dict[str, Any]:
    return LOADED[name]


class Receiver:
    """A plain HTTP endpoint that keeps every callback posted to it."""

    def __init__(self) -> None:
        self.bodies: dict[str, list[Any]] = {}
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.bodies.setdefault(request.match_info["name"], []).append(await request.json())
        return web.json_response({"ResultCode": 0, "ResultDesc": "Accepted"})


@pytest.fixture
async def rig() -> AsyncIterator[tuple[Simulator, aiohttp.ClientSession, dict[str, str], Receiver]]:
    sim = Simulator(timestamp_tolerance=None, callback_delay=0.0)
    await sim.start()
    receiver = Receiver()
    app = web.Application()
    app.router.add_post("/cb/{name}", receiver.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    receiver.url = f"http://{host}:{port}/cb"
    async with aiohttp.ClientSession() as http:
        basic = base64.b64encode(b"key:secret").decode()
        async with http.get(
            sim.base_url + api.OAUTH_PATH,
            params={"grant_type": "client_credentials"},
            headers={"Authorization": f"Basic {basic}"},
        ) as resp:
            token = (await resp.json())["access_token"]
        yield sim, http, {"Authorization": f"Bearer {token}"}, receiver
    await runner.cleanup()
    await sim.stop()


async def post(http: aiohttp.ClientSession, url: str, body: Any, headers: dict[str, str]) -> tuple[int, Any]:
    async with http.post(url, json=body, headers=headers) as resp:
        return resp.status, await resp.json()


@pytest.mark.parametrize("name", NAMES)
async def test_each_request_sample_gets_the_answer_its_page_gives(
    rig: tuple[Simulator, aiohttp.ClientSession, dict[str, str], Receiver], name: str
) -> None:
    sim, http, auth, _ = rig
    data = sample(name)
    assert data["source"].startswith("https://developer.safaricom.co.ke/apis/")
    checkout = ""
    for request in data["requests"]:
        body = dict(request["body"])
        if request.get("checkout_from_push"):
            body["CheckoutRequestID"] = checkout
        status, answer = await post(http, sim.base_url + request["path"], body, auth)
        if request["expect"] == "accepted":
            assert status == 200, (request["path"], answer)
            code = answer.get("ResponseCode", answer.get("ResponseStatus"))
            assert str(code) in ("0", "1000"), answer
            checkout = answer.get("CheckoutRequestID", checkout)
        else:
            assert (status, answer["errorCode"]) == (request["status"], request["errorCode"]), answer
            assert set(answer) == {"requestId", "errorCode", "errorMessage"}


@pytest.mark.parametrize("name", NAMES)
def test_each_callback_sample_is_read_by_our_client(name: str) -> None:
    for callback in sample(name)["callbacks"]:
        body, kind = callback["body"], callback["kind"]
        if kind == "stk":
            cb = StkCallbackEnvelope.model_validate(body).Body.stkCallback
            assert cb.ResultCode in ("0", "1032")
            if cb.ResultCode == "0":
                assert callback_amount(cb.item("Amount")) == Decimal("1")
                assert cb.item("MpesaReceiptNumber") == "NLJ7RT61SV"
        elif kind == "c2b_confirmation":
            parsed = parse_callback(body)
            assert parsed is not None and parsed.TransID == "RKL51ZDR4F"
            assert Decimal(parsed.TransAmount) == Decimal("5.00")
        elif kind == "balance_result":
            result = ResultEnvelope.model_validate(body).Result
            balances = account_balances(result.parameter("AccountBalance"))
            assert balances["Utility Account"] == Decimal("228037.00")
            assert balances["Working Account"] == Decimal("700000.00")
        else:
            result = ResultEnvelope.model_validate(body).Result
            assert result.ResultCode in ("0", "2001", "R000002")
            if result.succeeded:
                raw = next(
                    result.parameter(k)
                    for k in ("TransactionAmount", "Amount")
                    if result.parameter(k) is not None
                )
                assert callback_amount(raw) is not None and callback_amount(raw) > 0  # type: ignore[operator]
    if name == "b2b.json":
        result = ResultEnvelope.model_validate(sample(name)["callbacks"][0]["body"]).Result
        assert result.ReferenceData is not None
        items = {item.Key: item.Value for item in result.ReferenceData.ReferenceItem}
        assert items["BillReferenceNumber"] == "19008"
        assert callback_amount(result.parameter("Amount")) == Decimal("190.00")


def shape(value: Any) -> Any:
    """The structure of a body: keys, parameter names and JSON types, not values."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        named = [v for v in value if isinstance(v, dict) and ("Key" in v or "Name" in v)]
        if named and len(named) == len(value):
            return sorted((v.get("Key", v.get("Name")), shape(v.get("Value"))) for v in value)
        return [shape(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return "number"
    return (
        "number" if isinstance(value, int | float) and not isinstance(value, bool) else type(value).__name__
    )


async def test_the_simulators_callbacks_are_shaped_as_the_samples(
    rig: tuple[Simulator, aiohttp.ClientSession, dict[str, str], Receiver],
) -> None:
    sim, http, auth, receiver = rig
    credential = security_credential(sim.initiator_password, sim.certificate)
    common = {"SecurityCredential": credential, "Remarks": "OK"}
    urls = {"QueueTimeOutURL": receiver.url + "/timeout"}
    b2c = {
        **common, **urls, "OriginatorConversationID": str(uuid.uuid4()), "InitiatorName": "api",
        "CommandID": "BusinessPayment", "Amount": 10, "PartyA": 600992, "PartyB": 254705912645,
        "ResultURL": receiver.url + "/b2c",
    }  # fmt: skip
    assert (await post(http, sim.base_url + api.B2C_PATH, b2c, auth))[0] == 200
    b2b = {
        **common, **urls, "Initiator": "api", "CommandID": "BusinessPayBill", "SenderIdentifierType": 4,
        "RecieverIdentifierType": 4, "Amount": "190", "PartyA": "600992", "PartyB": "888880",
        "AccountReference": "19008", "ResultURL": receiver.url + "/b2b",
    }  # fmt: skip
    assert (await post(http, sim.base_url + api.B2B_PATH, b2b, auth))[0] == 200
    await sim.idle()
    [paid] = receiver.bodies["b2c"]
    status = {
        **common, **urls, "Initiator": "api", "CommandID": "TransactionStatusQuery",
        "OriginalConversationID": paid["Result"]["OriginatorConversationID"], "PartyA": "600992",
        "IdentifierType": "4", "ResultURL": receiver.url + "/status",
    }  # fmt: skip
    balance = {
        **common, **urls, "Initiator": "api", "CommandID": "AccountBalance", "PartyA": "600992",
        "IdentifierType": "4", "ResultURL": receiver.url + "/balance",
    }  # fmt: skip
    reversal = {
        **common, **urls, "Initiator": "api", "CommandID": "TransactionReversal",
        "TransactionID": paid["Result"]["TransactionID"], "Amount": "10", "ReceiverParty": "600992",
        "RecieverIdentifierType": "11", "ResultURL": receiver.url + "/reversal",
    }  # fmt: skip
    for path, body in ((api.STATUS_PATH, status), (api.BALANCE_PATH, balance), (api.REVERSAL_PATH, reversal)):
        assert (await post(http, sim.base_url + path, body, auth))[0] == 200
    sim.till = None
    password = base64.b64encode(f"{sim.shortcode}{sim.passkey}20210628092408".encode()).decode()
    push = dict(
        sample("stk.json")["requests"][0]["body"], Password=password, CallBackURL=receiver.url + "/stk"
    )
    assert (await post(http, sim.base_url + api.STK_PUSH_PATH, push, auth))[0] == 200
    sim.add_rule(Behaviour(outcome="fail"), path=api.STK_PUSH_PATH)
    push_cancelled = dict(push, CallBackURL=receiver.url + "/stk_cancelled")
    assert (await post(http, sim.base_url + api.STK_PUSH_PATH, push_cancelled, auth))[0] == 200
    await sim.idle()

    def sample_callback(name: str, index: int = 0) -> Any:
        return sample(name)["callbacks"][index]["body"]

    assert shape(receiver.bodies["b2c"][0]) == shape(sample_callback("b2c.json"))
    assert shape(receiver.bodies["b2b"][0]) == shape(sample_callback("b2b.json"))
    assert shape(receiver.bodies["status"][0]) == shape(sample_callback("status.json"))
    assert shape(receiver.bodies["balance"][0]) == shape(sample_callback("balance.json"))
    assert shape(receiver.bodies["reversal"][0]) == shape(sample_callback("reversal.json"))
    assert shape(receiver.bodies["stk"][0]) == shape(sample_callback("stk.json"))
    assert shape(receiver.bodies["stk_cancelled"][0]) == shape(sample_callback("stk.json", 1))
    # The wording a reader matches on: the TransactionStatus page's, not "accepted".
    assert (
        receiver.bodies["status"][0]["Result"]["ResultDesc"]
        == "The service request is processed successfully."
    )


async def test_unknown_paths_and_methods_answer_daraja_json(
    rig: tuple[Simulator, aiohttp.ClientSession, dict[str, str], Receiver],
) -> None:
    sim, http, auth, _ = rig
    status, answer = await post(http, sim.base_url + "/mpesa/nothing/v1/here", {}, auth)
    assert (status, answer["errorCode"], answer["errorMessage"]) == (404, "404.001.01", "Resource not found")
    async with http.get(sim.base_url + api.B2C_PATH, headers=auth) as resp:
        assert resp.status == 405 and (await resp.json())["errorCode"] == "405.001"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("Amount", "ten"), ("Amount", None), ("PartyB", {"n": 1}), ("Remarks", "x" * 101),
        ("ResultURL", "not a url"), ("CommandID", "BusinessPayBill"), ("InitiatorName", ""),
    ],
)  # fmt: skip
async def test_a_field_the_page_refuses_is_named_in_daraja_words(
    rig: tuple[Simulator, aiohttp.ClientSession, dict[str, str], Receiver], field: str, value: Any
) -> None:
    sim, http, auth, _ = rig
    body = dict(sample("b2c.json")["requests"][0]["body"], OriginatorConversationID=str(uuid.uuid4()))
    body[field] = value
    status, answer = await post(http, sim.base_url + api.B2C_PATH, body, auth)
    assert (status, answer["errorCode"]) == (400, "400.002.02")
    assert answer["errorMessage"] == f"Bad Request - Invalid {field}"
    assert not sim.payouts
