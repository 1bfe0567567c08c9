"""The Daraja client against the simulator over real HTTP: what it sends, field for field, and how it reads
what Daraja answers. No database needed."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from daraja_sim import Behaviour, Simulator
from ledger.daraja import client as api
from ledger.daraja.client import (
    DarajaAuthError,
    DarajaClient,
    DarajaDuplicate,
    DarajaRejected,
    DarajaTransientError,
    msisdn,
)
from ledger.daraja.credentials import (
    decrypt_security_credential,
    generate_certificate,
    nairobi_timestamp,
    security_credential,
    stk_password,
)
from ledger.daraja.models import ResultEnvelope, StkCallbackEnvelope, StkQueryResponse, TokenResponse
from tests.mpesa.conftest import sim_config

NAIROBI = ZoneInfo("Africa/Nairobi")


def test_stk_password_and_nairobi_timestamp() -> None:
    # 21:30 UTC is 00:30 the next day in Nairobi (UTC+3): the date rolls over too.
    moment = dt.datetime(2024, 2, 29, 21, 30, 5, tzinfo=dt.UTC)
    assert nairobi_timestamp(moment) == "20240301003005"
    assert (
        stk_password("174379", "passkey", "20240301003005")
        == base64.b64encode(b"174379passkey20240301003005").decode()
    )
    with pytest.raises(ValueError):
        nairobi_timestamp(dt.datetime(2024, 1, 1))  # naive: ambiguous


def test_security_credential_is_pkcs1v15_with_the_certificate() -> None:
    cert, key = generate_certificate()
    credential = security_credential("Safaricom999!*!", cert)
    assert decrypt_security_credential(credential, key) == "Safaricom999!*!"
    # PKCS#1 v1.5 is randomised: two encryptions differ, both decrypt.
    assert security_credential("Safaricom999!*!", cert) != credential


def test_models_accept_what_daraja_really_sends() -> None:
    assert TokenResponse.model_validate({"access_token": "t", "expires_in": "3599"}).expires_in == 3599
    result = ResultEnvelope.model_validate(
        {
            "Result": {
                "ResultType": "0",
                "ResultCode": "0",
                "ResultDesc": "ok",
                "OriginatorConversationID": "o",
                "ConversationID": "c",
                "TransactionID": "T",
                "ResultParameters": {"ResultParameter": {"Key": "TransactionAmount", "Value": 10}},
                "ReferenceData": {"ReferenceItem": {"Key": "QueueTimeoutURL", "Value": "u"}},
            }
        }
    ).Result
    assert result.succeeded and result.parameter("TransactionAmount") == 10
    numeric = ResultEnvelope.model_validate({"Result": {"ResultCode": 2001, "ResultDesc": "bad"}}).Result
    assert numeric.ResultCode == "2001" and not numeric.succeeded
    stk = StkCallbackEnvelope.model_validate(
        {
            "Body": {
                "stkCallback": {
                    "MerchantRequestID": "m",
                    "CheckoutRequestID": "c",
                    "ResultCode": 0,
                    "ResultDesc": "ok",
                    "CallbackMetadata": {"Item": [{"Name": "Amount", "Value": 1.0}, {"Name": "Balance"}]},
                }
            }
        }
    ).Body.stkCallback
    assert stk.ResultCode == "0" and stk.item("Balance") is None and stk.item("Amount") == 1.0
    assert StkQueryResponse.model_validate({"ResponseCode": "0", "ResultCode": "1032"}).ResultCode == "1032"
    assert msisdn("0712 345 678") == msisdn("+254712345678") == "254712345678"


async def test_oauth_token_is_shared_single_flight(sim: Simulator, client: DarajaClient) -> None:
    tokens = await asyncio.gather(*(client.access_token() for _ in range(25)))
    assert len(set(tokens)) == 1
    oauth = sim.requests_to(api.OAUTH_PATH)
    assert len(oauth) == 1
    assert oauth[0].body == {"grant_type": "client_credentials"}
    expected = base64.b64encode(b"sim-key:sim-secret").decode()
    assert oauth[0].headers["Authorization"] == f"Basic {expected}"


async def test_a_newer_token_elsewhere_is_survived(sim: Simulator, client: DarajaClient) -> None:
    await client.access_token()
    # Another process takes a token: Daraja invalidates ours. The next call gets 401, refetches, succeeds.
    async with DarajaClient(sim_config(sim)) as other:
        await other.access_token()
    answer = await client.stk_push(
        amount=Decimal("10"),
        phone="0712345678",
        callback_url="http://127.0.0.1:9/cb",
        account_reference="x",
        description="d",
    )
    assert answer.ResponseCode == "0"
    assert client.tokens.fetches == 2


async def test_wrong_consumer_secret_is_an_auth_error_never_a_payment_verdict(sim: Simulator) -> None:
    async with DarajaClient(sim_config(sim, consumer_secret="wrong")) as bad:
        with pytest.raises(DarajaAuthError):
            await bad.access_token()
        with pytest.raises(DarajaAuthError):  # a payout must be retried, not refunded
            await bad.b2c(
                originator_conversation_id="x", amount=Decimal("10"), phone="0712345678", remarks="r",
                result_url="http://e/r", timeout_url="http://e/t",
            )  # fmt: skip
    async with DarajaClient(sim_config(sim, certificate=None)) as no_cert:
        with pytest.raises(DarajaAuthError):
            no_cert.security_credential()


async def test_stk_push_request_matches_the_documentation(sim: Simulator, client: DarajaClient) -> None:
    answer = await client.stk_push(
        amount=Decimal("150.00"),
        phone="0712345678",
        callback_url="https://example.test/v1/callbacks/s/stk",
        account_reference="OngeaPesa",
        description="Wallet top-up",
    )
    assert answer.CheckoutRequestID.startswith("ws_CO_")
    [req] = sim.requests_to(api.STK_PUSH_PATH)
    body = req.body
    assert set(body) == {
        "BusinessShortCode", "Password", "Timestamp", "TransactionType", "Amount", "PartyA", "PartyB",
        "PhoneNumber", "CallBackURL", "AccountReference", "TransactionDesc",
    }  # fmt: skip
    assert body["BusinessShortCode"] == "174379" and body["PartyB"] == "174379"
    assert body["TransactionType"] == "CustomerPayBillOnline"
    assert body["Amount"] == 150 and isinstance(body["Amount"], int)
    assert body["PartyA"] == body["PhoneNumber"] == "254712345678"
    assert body["CallBackURL"] == "https://example.test/v1/callbacks/s/stk"
    # The timestamp is Nairobi wall-clock time, and the password is base64(shortcode + passkey + timestamp).
    stamp = dt.datetime.strptime(body["Timestamp"], "%Y%m%d%H%M%S").replace(tzinfo=NAIROBI)
    assert abs(dt.datetime.now(NAIROBI) - stamp) < dt.timedelta(seconds=5)
    assert base64.b64decode(body["Password"]).decode() == f"174379{sim.passkey}{body['Timestamp']}"
    assert req.headers["Authorization"].startswith("Bearer ")


async def test_stk_with_a_utc_timestamp_is_refused(sim: Simulator) -> None:
    """What Daraja does when the timestamp is not Nairobi time (a classic bug): the simulator refuses too."""
    async with DarajaClient(sim_config(sim)) as c:
        token = await c.access_token()
        utc = dt.datetime.now(dt.UTC).strftime("%Y%m%d%H%M%S")
        body = {
            "BusinessShortCode": "174379", "Password": stk_password("174379", sim.passkey, utc),
            "Timestamp": utc, "TransactionType": "CustomerPayBillOnline", "Amount": 1,
            "PartyA": "254712345678", "PartyB": "174379", "PhoneNumber": "254712345678", "CallBackURL": "http://x/cb",
            "AccountReference": "a", "TransactionDesc": "d",
        }  # fmt: skip
        async with c.session.post(
            sim.base_url + api.STK_PUSH_PATH, json=body, headers={"Authorization": f"Bearer {token}"}
        ) as resp:
            assert resp.status == 400
            assert "Timestamp" in (await resp.json())["errorMessage"]


async def test_b2c_b2pochi_b2b_status_requests_match_the_documentation(
    sim: Simulator, client: DarajaClient
) -> None:
    common: dict[str, Any] = {"result_url": "https://e.test/r", "timeout_url": "https://e.test/t"}
    await client.b2c(
        originator_conversation_id="tx-1", amount=Decimal("100"), phone="0712345678", remarks="r", **common
    )
    await client.b2pochi(
        originator_conversation_id="tx-2", amount=Decimal("200"), phone="0722000000", remarks="r", **common
    )
    await client.b2b(
        command="BusinessPayBill", amount=Decimal("300"), party_b="888880",
        account_reference="ACC123", requester="0712345678", remarks="r", **common,
    )  # fmt: skip
    await client.transaction_status(originator_conversation_id="tx-1", **common)
    [b2c] = sim.requests_to(api.B2C_PATH)
    assert set(b2c.body) == {
        "OriginatorConversationID", "InitiatorName", "SecurityCredential", "CommandID", "Amount", "PartyA",
        "PartyB", "Remarks", "QueueTimeOutURL", "ResultURL", "Occassion",
    }  # fmt: skip
    assert b2c.body["CommandID"] == "BusinessPayment" and b2c.body["PartyB"] == "254712345678"
    assert b2c.body["OriginatorConversationID"] == "tx-1" and b2c.body["Amount"] == 100
    assert b2c.body["PartyA"] == "600000" and b2c.body["InitiatorName"] == "testapi"
    assert b2c.body["ResultURL"] == "https://e.test/r" and b2c.body["QueueTimeOutURL"] == "https://e.test/t"
    [pochi] = sim.requests_to(api.B2POCHI_PATH)
    assert pochi.body["CommandID"] == "BusinessPayToPochi" and pochi.body["PartyB"] == "254722000000"
    [b2b] = sim.requests_to(api.B2B_PATH)
    assert set(b2b.body) >= {
        "Initiator", "SecurityCredential", "CommandID", "SenderIdentifierType", "RecieverIdentifierType",
        "Amount", "PartyA", "PartyB", "AccountReference", "Requester", "Remarks", "QueueTimeOutURL",
        "ResultURL",
    }  # fmt: skip
    assert "ReceiverIdentifierType" not in b2b.body  # Daraja's own spelling, not the dictionary's
    assert "OriginatorConversationID" not in b2b.body  # Daraja assigns B2B ids itself
    assert b2b.body["SenderIdentifierType"] == b2b.body["RecieverIdentifierType"] == "4"
    assert b2b.body["PartyB"] == "888880" and b2b.body["AccountReference"] == "ACC123"
    [status] = sim.requests_to(api.STATUS_PATH)
    assert status.body["CommandID"] == "TransactionStatusQuery"
    assert status.body["OriginalConversationID"] == "tx-1" and status.body["IdentifierType"] == "4"
    assert status.body["PartyA"] == "600000" and status.body["Initiator"] == "testapi"
    # The credential is the initiator password encrypted with the certificate (the simulator decrypts it).
    assert sim.initiator_ok(b2c.body["SecurityCredential"])


async def test_error_classification(sim: Simulator, client: DarajaClient) -> None:
    common: dict[str, Any] = {
        "result_url": "https://e.test/r",
        "timeout_url": "https://e.test/t",
        "remarks": "r",
    }
    sim.add_rule(Behaviour(http_error=503), originator="tx-5xx", times=1)
    with pytest.raises(DarajaTransientError):
        await client.b2c(
            originator_conversation_id="tx-5xx", amount=Decimal("10"), phone="0712345678", **common
        )
    # Throttled (429, or HTTP 500 500.003.02/.03): not accepted, so the client sends it again itself.
    sim.add_rule(Behaviour(http_error=429), originator="tx-429", times=1)
    await client.b2c(originator_conversation_id="tx-429", amount=Decimal("10"), phone="0712345678", **common)
    assert len(sim.sent_payouts("tx-429")) == 2 and len(sim.payouts_for("tx-429")) == 1
    await client.b2c(originator_conversation_id="tx-dup", amount=Decimal("10"), phone="0712345678", **common)
    with pytest.raises(DarajaDuplicate):
        await client.b2c(
            originator_conversation_id="tx-dup", amount=Decimal("10"), phone="0712345678", **common
        )
    with pytest.raises(DarajaRejected):
        await client.b2c(
            originator_conversation_id="tx-c", amount=Decimal("10.50"), phone="0712345678", **common
        )
    async with DarajaClient(sim_config(sim, base_url="http://127.0.0.1:9")) as down:
        with pytest.raises(DarajaTransientError):
            await down.access_token()
