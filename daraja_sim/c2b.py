"""Money coming in: C2B URL registration, payments into a paybill (simulated as a bank app makes them),
and Pull Transactions (registered once per shortcode, then queried over the last 48 hours)."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import uuid
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from aiohttp import web

from daraja_sim import errors, fields
from daraja_sim import paths as p
from daraja_sim.ids import NAIROBI, nairobi_now, receipt
from daraja_sim.state import SimC2b

if TYPE_CHECKING:
    from daraja_sim.core import Simulator

URL_FIELDS = ("ResponseType", "ConfirmationURL", "ValidationURL")
_DATE = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2}) (\d{1,2}):(\d{1,2}):(\d{1,3})")


def add_routes(app: web.Application, sim: Simulator) -> None:
    async def register(request: web.Request) -> web.Response:
        return await _register(sim, request)

    async def simulate(request: web.Request) -> web.Response:
        return await _simulate(sim, request)

    async def pull_register(request: web.Request) -> web.Response:
        return await _pull_register(sim, request)

    async def pull_query(request: web.Request) -> web.Response:
        return await _pull_query(sim, request)

    app.router.add_post(p.C2B_REGISTER_V1, register)
    app.router.add_post(p.C2B_REGISTER_V2, register)
    app.router.add_post(p.C2B_SIMULATE, simulate)
    app.router.add_post(p.PULL_REGISTER, pull_register)
    app.router.add_post(p.PULL_QUERY, pull_query)


async def _register(sim: Simulator, request: web.Request) -> web.Response:
    body = await sim.body(request)
    if isinstance(body, web.Response):
        return body
    behaviour = sim.behaviour_for(request.path, body)
    refusal = sim.refusal(behaviour)
    if refusal is not None:
        return refusal
    shortcode = fields.text(body, "ShortCode")
    if sim.c2b_register_once and shortcode in sim.c2b_urls:
        return errors.daraja_error(500, errors.INTERNAL, "Urls are already registered")
    sim.c2b_urls[shortcode] = {f: fields.text(body, f) for f in URL_FIELDS}
    return web.json_response(
        {"OriginatorCoversationID": str(uuid.uuid4()), "ResponseCode": "0", "ResponseDescription": "Success"}
    )


async def _simulate(sim: Simulator, request: web.Request) -> web.Response:
    """The sandbox's C2B simulate: `{ShortCode, CommandID, Amount, Msisdn, BillRefNumber}`."""
    body = await sim.body(request)
    if isinstance(body, web.Response):
        return body
    shortcode = fields.text(body, "ShortCode")
    if shortcode not in sim.c2b_urls:
        return errors.invalid("ShortCode")
    amount = Decimal(fields.text(body, "Amount"))
    if amount <= 0:
        return errors.invalid("Amount")
    kind = "Buy Goods" if fields.text(body, "CommandID") == "CustomerBuyGoodsOnline" else "Pay Bill"
    payment = await pay(
        sim,
        shortcode,
        amount,
        fields.text(body, "BillRefNumber"),
        fields.text(body, "Msisdn"),
        transaction_type=kind,
    )
    return web.json_response(
        {
            "OriginatorCoversationID": payment.trans_id,
            "ResponseCode": "0",
            "ResponseDescription": "Accept the service request successfully.",
        }
    )


async def pay(
    sim: Simulator,
    shortcode: str,
    amount: Decimal,
    bill_ref: str,
    msisdn: str = "254708374149",
    *,
    transaction_type: str = "Pay Bill",
    first_name: str = "JOHN",
    deliver: bool = True,
) -> SimC2b:
    """A person pays `amount` into `shortcode` with `bill_ref`: validation (when enabled; a rejection sends
    the money back), then the confirmation. `deliver=False`: the money arrives but the confirmation is lost
    (Pull Transactions still lists it)."""
    payment = SimC2b(receipt(), shortcode, amount, bill_ref, msisdn, nairobi_now())
    urls = sim.c2b_urls.get(shortcode)
    body = {
        "TransactionType": transaction_type,
        "TransID": payment.trans_id,
        "TransTime": f"{payment.at:%Y%m%d%H%M%S}",
        "TransAmount": f"{amount:.2f}",
        "BusinessShortCode": shortcode,
        "BillRefNumber": bill_ref,
        "InvoiceNumber": "",
        "OrgAccountBalance": "",
        "ThirdPartyTransID": "",
        "MSISDN": masked(sim, msisdn),
        "FirstName": first_name,
        "MiddleName": "",
        "LastName": "",
    }
    if urls is not None and sim.c2b_validation:
        answer = await sim.post_now(urls["ValidationURL"], body)
        payment.validated = str((answer or {}).get("ResultCode", ""))
        if answer is None:  # no answer within the time: Safaricom applies the ResponseType
            accepted = urls["ResponseType"] == "Completed"
        else:
            accepted = payment.validated == "0"
        if not accepted:
            return payment  # the money goes back to the payer
    sim.c2b_payments.append(payment)
    if urls is not None and deliver:
        await sim.post_now(urls["ConfirmationURL"], body)
        payment.confirmed = True
    return payment


def masked(sim: Simulator, msisdn: str) -> str:
    if sim.c2b_msisdn_form == "plain":
        return msisdn
    if sim.c2b_msisdn_form == "hashed":
        return hashlib.sha256(msisdn.encode()).hexdigest()
    return f"{msisdn[:6]}****{msisdn[-2:]}"


async def _pull_register(sim: Simulator, request: web.Request) -> web.Response:
    """Once per shortcode; a repeat answers ResponseStatus 1001 "ShortCode already Registered"."""
    body = await sim.body(request)
    if isinstance(body, web.Response):
        return body
    shortcode = fields.text(body, "ShortCode")
    already = shortcode in sim.pull_registered
    sim.pull_registered.setdefault(shortcode, fields.text(body, "CallBackURL"))
    return web.json_response(
        {
            "ResponseRefID": str(uuid.uuid4()),
            "ResponseStatus": "1001" if already else "1000",
            "ShortCode": shortcode,
            "ResponseDescription": "ShortCode already Registered"
            if already
            else "Shortcode Registered Successfully",
        }
    )


def _date(value: str) -> dt.datetime | None:
    """The page's own sample sends "2020-08-04 8:36:00" and "2020-08-16 10:10:000": read both."""
    match = _DATE.fullmatch(value.strip())
    if match is None:
        return None
    year, month, day, hour, minute, second = (int(g) for g in match.groups())
    try:
        return dt.datetime(year, month, day, hour, minute, min(second, 59), tzinfo=NAIROBI)
    except ValueError:
        return None


async def _pull_query(sim: Simulator, request: web.Request) -> web.Response:
    """Payments into a shortcode in a time window (C2B and paid STK pushes), a hundred a page; till
    payments have no bill reference."""
    body = await sim.body(request)
    if isinstance(body, web.Response):
        return body
    shortcode = fields.text(body, "ShortCode")
    if sim.pull_requires_registration and shortcode not in sim.pull_registered:
        return errors.invalid("ShortCode")
    start, end = _date(fields.text(body, "StartDate")), _date(fields.text(body, "EndDate"))
    if start is None:
        return errors.invalid("StartDate")
    if end is None:
        return errors.invalid("EndDate")
    offset = int(fields.text(body, "OffSetValue") or "0")
    end = end + dt.timedelta(seconds=1)
    lines: list[dict[str, Any]] = [
        _line(sim, c.trans_id, c.at, c.msisdn, c.bill_ref, f"{c.amount:.2f}", "c2b-pay-bill-debit")
        for c in sim.c2b_payments
        if c.shortcode == shortcode and start <= c.at <= end
    ]
    lines += [
        _line(
            sim,
            s.receipt,
            s.paid_at,
            s.phone,
            "" if s.till else s.account_reference,
            f"{s.amount}.00",
            "c2b-buy-goods-debit" if s.till else "c2b-pay-bill-debit",
        )
        for s in sim.stk.values()
        if s.success and s.paid_at is not None and shortcode == sim.shortcode and start <= s.paid_at <= end
    ]
    page = lines[offset : offset + 100]
    return web.json_response(
        {
            "ResponseRefID": str(uuid.uuid4()),
            "ResponseCode": "1000",
            "ResponseMessage": "Success",
            "Response": [page] if page else [],
        }
    )


def _line(
    sim: Simulator, trans_id: str, at: dt.datetime, msisdn: str, bill_ref: str, amount: str, kind: str
) -> dict[str, Any]:
    return {
        "transactionId": trans_id,
        "trxDate": at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "msisdn": masked(sim, msisdn),
        "sender": "UNKNOWN",
        "transactiontype": kind,
        "billreference": bill_ref,
        "amount": amount,
        "organizationname": "Ongea Pesa",
    }
