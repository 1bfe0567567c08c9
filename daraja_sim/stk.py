"""Lipa Na M-Pesa Online (STK push) and its query, as the MpesaExpressSimulate and MpesaExpressQuery pages
describe them: wrong credentials and an unknown shortcode are HTTP 500 `500.001.1001`, a wrong PartyB is
accepted and then fails in the callback with 2028, and the callback is shaped as the page's samples."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import secrets
from typing import TYPE_CHECKING, Any

from aiohttp import web

from daraja_sim import errors, fields
from daraja_sim import paths as p
from daraja_sim.ids import NAIROBI, nairobi_now, receipt, stamp
from daraja_sim.state import Behaviour, SimStk

if TYPE_CHECKING:
    from daraja_sim.core import Simulator

CANCELLED = (1032, "Request cancelled by user")
WRONG_PARTY_B = (2028, "The request is not permitted according to product assignment.")
PROCESSED = "The service request is processed successfully."
LOCKED = "Unable to lock subscriber, a transaction is already in process for the current subscriber"
STILL_PROCESSING = "4999"


def add_routes(app: web.Application, sim: Simulator) -> None:
    async def push(request: web.Request) -> web.Response:
        return await _push(sim, request)

    async def query(request: web.Request) -> web.Response:
        return await _query(sim, request)

    app.router.add_post(p.STK_PUSH, push)
    app.router.add_post(p.STK_QUERY, query)


def _auth(sim: Simulator, body: dict[str, Any]) -> web.Response | None:
    """The page's error table: an unknown shortcode is "Merchant does not exist", a password that is not
    base64(shortcode + passkey + timestamp) is "Wrong credentials", both HTTP 500 500.001.1001."""
    timestamp = fields.text(body, "Timestamp")
    try:
        sent = dt.datetime.strptime(timestamp, "%Y%m%d%H%M%S").replace(tzinfo=NAIROBI)
    except ValueError:
        return errors.invalid("Timestamp")
    if sim.timestamp_tolerance is not None and abs(dt.datetime.now(NAIROBI) - sent) > sim.timestamp_tolerance:
        return errors.invalid("Timestamp")
    shortcode = fields.text(body, "BusinessShortCode")
    if shortcode != sim.shortcode:
        return errors.daraja_error(500, errors.STK_FAILURE, "Merchant does not exist")
    expected = base64.b64encode(f"{shortcode}{sim.passkey}{timestamp}".encode()).decode()
    if fields.text(body, "Password") != expected:
        return errors.daraja_error(500, errors.STK_FAILURE, "Wrong credentials")
    return None


async def _push(sim: Simulator, request: web.Request) -> web.Response:
    body = await sim.body(request)
    if isinstance(body, web.Response):
        return body
    refused = _auth(sim, body)
    if refused is not None:
        return refused
    behaviour = sim.behaviour_for(request.path, body)
    refusal = sim.refusal(behaviour)
    if refusal is not None:
        return refusal
    now = asyncio.get_running_loop().time()
    phone = fields.text(body, "PhoneNumber")
    if sim.lock_subscriber and any(s.phone == phone and now < s.decided_at for s in sim.stk.values()):
        return errors.daraja_error(500, errors.STK_FAILURE, LOCKED)
    # A paybill is paid to itself; a till through its store number (BusinessShortCode). Another PartyB is
    # accepted, and fails in the callback (2028).
    buy_goods = fields.text(body, "TransactionType") == "CustomerBuyGoodsOnline"
    expected = sim.till if buy_goods else sim.shortcode
    party_ok = expected is not None and fields.text(body, "PartyB") == expected
    success = behaviour.outcome == "success" and party_ok
    if not party_ok:
        code: int | str = WRONG_PARTY_B[0]
        desc = WRONG_PARTY_B[1]
    elif success:
        code, desc = 0, PROCESSED
    else:
        code = behaviour.result_code or CANCELLED[0]
        desc = behaviour.result_desc or CANCELLED[1]
    stk = SimStk(
        checkout_request_id=f"ws_CO_{nairobi_now():%d%m%Y%H%M%S}{secrets.randbelow(10**9):09d}",
        merchant_request_id=f"{secrets.token_hex(2)}-{secrets.token_hex(2)}-{secrets.token_hex(12)}",
        amount=fields.amount(body),
        phone=fields.text(body, "PhoneNumber"),
        success=success,
        result_code=code,
        result_desc=desc,
        receipt=receipt(),
        decided_at=asyncio.get_running_loop().time() + sim.delay(behaviour),
        account_reference=fields.text(body, "AccountReference"),
        paid_at=nairobi_now(),
        till=buy_goods,
    )
    sim.stk[stk.checkout_request_id] = stk
    sim.schedule_callbacks(
        behaviour, fields.text(body, "CallBackURL"), callback(stk, behaviour), timeout_url=None
    )
    if behaviour.lose_response:
        return errors.daraja_error(503, "503.001.01", "Service Unavailable")
    if behaviour.callback == "out_of_order":
        await asyncio.sleep(sim.delay(behaviour))
    return web.json_response(
        {
            "MerchantRequestID": stk.merchant_request_id,
            "CheckoutRequestID": stk.checkout_request_id,
            "ResponseCode": "0",
            "ResponseDescription": "Success. Request accepted for processing",
            "CustomerMessage": "Success. Request accepted for processing",
        }
    )


def callback(stk: SimStk, behaviour: Behaviour) -> dict[str, Any]:
    """As the page's samples: ResultCode a number, Amount a decimal, TransactionDate and PhoneNumber too."""
    code: int | str = str(stk.result_code) if behaviour.code_as_string else stk.result_code
    body: dict[str, Any] = {
        "MerchantRequestID": stk.merchant_request_id,
        "CheckoutRequestID": stk.checkout_request_id,
        "ResultCode": code,
        "ResultDesc": stk.result_desc,
    }
    if behaviour.callback_code is not None:  # the callback says this, whatever happened (the query tells)
        body["ResultCode"] = behaviour.callback_code
        body["ResultDesc"] = behaviour.result_desc or CANCELLED[1]
        return {"Body": {"stkCallback": body}}
    if stk.success:
        amount = behaviour.callback_amount if behaviour.callback_amount is not None else stk.amount
        body["CallbackMetadata"] = {
            "Item": [
                {"Name": "Amount", "Value": float(amount)},
                {"Name": "MpesaReceiptNumber", "Value": stk.receipt},
                {"Name": "TransactionDate", "Value": int(stamp(nairobi_now()))},
                {"Name": "PhoneNumber", "Value": int(stk.phone)},
            ]
        }
    return {"Body": {"stkCallback": body}}


async def _query(sim: Simulator, request: web.Request) -> web.Response:
    body = await sim.body(request)
    if isinstance(body, web.Response):
        return body
    refused = _auth(sim, body)
    if refused is not None:
        return refused
    stk = sim.stk.get(fields.text(body, "CheckoutRequestID"))
    if stk is None:
        return errors.invalid("CheckoutRequestID")
    answer = {
        "ResponseCode": "0",
        "ResponseDescription": "The service request has been accepted successsfully",
        "MerchantRequestID": stk.merchant_request_id,
        "CheckoutRequestID": stk.checkout_request_id,
    }
    if asyncio.get_running_loop().time() < stk.decided_at:
        if sim.stk_pending_form == "result_4999":
            return web.json_response(
                {
                    **answer,
                    "ResultCode": STILL_PROCESSING,
                    "ResultDesc": "The transaction is still under processing",
                }
            )
        return errors.daraja_error(500, errors.STK_FAILURE, "The transaction is being processed")
    return web.json_response({**answer, "ResultCode": str(stk.result_code), "ResultDesc": stk.result_desc})
