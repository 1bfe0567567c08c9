"""Payouts and what is asked about them: B2C, B2Pochi, B2B, Transaction Status, Account Balance and Reversal.

Requests are answered synchronously ("accepted"); the verdict comes later to the ResultURL, shaped as the
portal's samples (B2C amounts as numbers; B2B amounts and times as strings, its ReferenceItem an array with
the BillReferenceNumber). The QueueTimeOutURL receives the original request, flat, as Daraja sends it.
A status query finds a payout by the id the TransactionStatus page documents (the OriginatorConversationID
its answer gave) or by its receipt.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from aiohttp import web

from daraja_sim import errors, fields
from daraja_sim import paths as p
from daraja_sim.ids import conversation_id, daraja_originator, nairobi_now, receipt, stamp
from daraja_sim.state import Behaviour, SimPayout

if TYPE_CHECKING:
    from daraja_sim.core import Simulator

INITIATOR_INVALID = (2001, "The initiator information is invalid.")
INSUFFICIENT_FUNDS = (1, "The balance is insufficient for the transaction.")
NOT_FOUND = ("R000002", "The OriginalTransactionID is invalid.")
PROCESSED = "The service request is processed successfully."
ACCEPTED = "Accept the service request successfully."
NON_VERDICTS = {15: "Duplicate detected", 17: "Internal failure"}
REASON = {
    "BusinessPayment": "Business Payment to Customer via API",
    "SalaryPayment": "Salary Payment via API",
    "PromotionPayment": "Promotion Payment via API",
    "BusinessPayToPochi": "Business Pay to Pochi via API",
    "BusinessPayBill": "Business Pay Bill",
    "BusinessBuyGoods": "Business Buy Goods",
}


def add_routes(app: web.Application, sim: Simulator) -> None:
    async def payout(request: web.Request) -> web.Response:
        return await _payout(sim, request)

    async def status(request: web.Request) -> web.Response:
        return await _status(sim, request)

    async def balance(request: web.Request) -> web.Response:
        return await _balance(sim, request)

    async def reversal(request: web.Request) -> web.Response:
        return await _reversal(sim, request)

    for path in p.PAYOUTS:
        app.router.add_post(path, payout)
    app.router.add_post(p.STATUS, status)
    app.router.add_post(p.BALANCE, balance)
    app.router.add_post(p.REVERSAL, reversal)


def _accepted(originator: str, conversation: str) -> web.Response:
    return web.json_response(
        {
            "ConversationID": conversation,
            "OriginatorConversationID": originator,
            "ResponseCode": "0",
            "ResponseDescription": ACCEPTED,
        }
    )


async def _payout(sim: Simulator, request: web.Request) -> web.Response:
    body = await sim.body(request)
    if isinstance(body, web.Response):
        return body
    # B2B (and B2C v1) carry no OriginatorConversationID: Daraja assigns one, so a resend is a new payment.
    own_id = request.path in (p.B2C, p.B2POCHI)
    originator = fields.text(body, "OriginatorConversationID") if own_id else daraja_originator()
    behaviour = sim.behaviour_for(request.path, body)
    refusal = sim.refusal(behaviour)
    if refusal is not None:
        return refusal
    if originator in sim.payouts:
        return errors.daraja_error(500, errors.DUPLICATE, "Duplicate OriginatorConversationID.")
    initiator_ok = sim.initiator_ok(fields.text(body, "SecurityCredential"))
    success = behaviour.outcome == "success" and initiator_ok
    code: int | str
    if not initiator_ok:
        code, desc = INITIATOR_INVALID
    elif success:
        code, desc = 0, PROCESSED
    else:
        code = behaviour.result_code if behaviour.result_code is not None else INITIATOR_INVALID[0]
        desc = behaviour.result_desc or (
            INSUFFICIENT_FUNDS[1] if str(code) == str(INSUFFICIENT_FUNDS[0]) else INITIATOR_INVALID[1]
        )
    payout = SimPayout(
        originator_conversation_id=originator,
        conversation_id=conversation_id(),
        result_url=fields.text(body, "ResultURL"),
        path=request.path,
        command=fields.text(body, "CommandID"),
        amount=fields.amount(body),
        party_a=fields.text(body, "PartyA"),
        party_b=fields.text(body, "PartyB"),
        success=success,
        result_code=code,
        result_desc=desc,
        receipt=receipt() if success else "",
        completed_at=nairobi_now(),
        account_reference=fields.text(body, "AccountReference"),
    )
    sim.payouts[originator] = payout
    if success:
        if request.path == p.B2B:
            sim.working_balance -= payout.amount
        else:
            sim.utility_balance -= payout.amount
    timeout_url = fields.text(body, "QueueTimeOutURL")
    if behaviour.callback == "queue_timeout":
        sim.schedule(sim.delay(behaviour), timeout_url, dict(body))
    else:
        sim.schedule_callbacks(
            behaviour, payout.result_url, result(payout, behaviour), timeout_url=timeout_url, stale=dict(body)
        )
    if behaviour.lose_response:
        return errors.daraja_error(503, "503.001.01", "Service Unavailable")
    if behaviour.callback == "out_of_order":
        await asyncio.sleep(sim.delay(behaviour))
    return _accepted(originator, "" if behaviour.blank_conversation_id else payout.conversation_id)


def result(payout: SimPayout, behaviour: Behaviour) -> dict[str, Any]:
    """The result callback of a payout, as the B2C and BusinessPayBill pages' samples show it."""
    b2b = payout.path == p.B2B
    code: int | str = payout.result_code
    desc = payout.result_desc
    verdict = True
    if behaviour.callback_code is not None:
        code = behaviour.callback_code
        verdict = str(code) == "0"
        desc = NON_VERDICTS.get(int(code), desc) if str(code).isdigit() else desc
    success = payout.success and verdict
    as_text = behaviour.code_as_string or (b2b and success)  # the B2B sample sends "0"
    body: dict[str, Any] = {
        "ResultType": "0" if as_text else 0,
        "ResultCode": str(code) if as_text else code,
        "ResultDesc": desc,
        "OriginatorConversationID": payout.originator_conversation_id,
        "ConversationID": payout.conversation_id,
        "TransactionID": payout.receipt if success else receipt(),
    }
    amount = behaviour.callback_amount if behaviour.callback_amount is not None else payout.amount
    if success and b2b:
        body["ResultParameters"] = {
            "ResultParameter": [
                {"Key": "DebitAccountBalance", "Value": "{Amount={CurrencyCode=KES, MinimumAmount=0}}"},
                {"Key": "Amount", "Value": f"{Decimal(amount):.2f}"},
                {
                    "Key": "DebitPartyAffectedAccountBalance",
                    "Value": "Working Account|KES|0.00|0.00|0.00|0.00",
                },
                {"Key": "TransCompletedTime", "Value": stamp(payout.completed_at)},
                {"Key": "DebitPartyCharges", "Value": ""},
                {"Key": "ReceiverPartyPublicName", "Value": f"{payout.party_b} - Simulated Merchant"},
                {"Key": "Currency", "Value": "KES"},
                {"Key": "InitiatorAccountCurrentBalance", "Value": "{Amount={CurrencyCode=KES}}"},
            ]
        }
    elif success:
        body["ResultParameters"] = {
            "ResultParameter": [
                {"Key": "TransactionAmount", "Value": float(amount)},
                {"Key": "TransactionReceipt", "Value": payout.receipt},
                {"Key": "ReceiverPartyPublicName", "Value": f"{payout.party_b} - Simulated Customer"},
                {"Key": "TransactionCompletedDateTime", "Value": f"{payout.completed_at:%d.%m.%Y %H:%M:%S}"},
                {"Key": "B2CUtilityAccountAvailableFunds", "Value": 8959269.60},
                {"Key": "B2CWorkingAccountAvailableFunds", "Value": 1199371.00},
                {"Key": "B2CRecipientIsRegisteredCustomer", "Value": "Y"},
                {"Key": "B2CChargesPaidAccountAvailableFunds", "Value": -1980.00},
            ]
        }
    queue = {
        "Key": "QueueTimeoutURL",
        "Value": "https://internalsandbox.safaricom.co.ke/mpesa/b2bresults/v1/submit",
    }
    if b2b:
        body["ReferenceData"] = {
            "ReferenceItem": [{"Key": "BillReferenceNumber", "Value": payout.account_reference}, queue]
        }
    else:
        body["ReferenceData"] = {"ReferenceItem": queue}
    return {"Result": body}


def _find(sim: Simulator, originator: str, transaction_id: str) -> SimPayout | None:
    if originator and originator in sim.payouts:
        return sim.payouts[originator]
    for payout in sim.payouts.values():
        if transaction_id and payout.receipt == transaction_id:
            return payout
        if sim.status_by_conversation_id and originator and payout.conversation_id == originator:
            return payout
    return None


async def _status(sim: Simulator, request: web.Request) -> web.Response:
    body = await sim.body(request)
    if isinstance(body, web.Response):
        return body
    behaviour = sim.behaviour_for(request.path, body)
    refusal = sim.refusal(behaviour)
    if refusal is not None:
        return refusal
    originator, conversation = daraja_originator(), conversation_id()
    answer: dict[str, Any] = {
        "ResultType": 0,
        "OriginatorConversationID": originator,
        "ConversationID": conversation,
        "TransactionID": "SKE0000000",
        "ReferenceData": {"ReferenceItem": {"Key": "Occasion"}},
    }
    payout = _find(sim, fields.text(body, "OriginalConversationID"), fields.text(body, "TransactionID"))
    if not sim.initiator_ok(fields.text(body, "SecurityCredential")):
        answer["ResultCode"], answer["ResultDesc"] = INITIATOR_INVALID
    elif payout is None:
        answer["ResultCode"], answer["ResultDesc"] = NOT_FOUND
    else:
        answer["ResultCode"], answer["ResultDesc"] = 0, PROCESSED
        answer["ResultParameters"] = {"ResultParameter": _status_parameters(payout)}
    if behaviour.callback != "none":
        sim.schedule(sim.delay(behaviour), fields.text(body, "ResultURL"), {"Result": answer})
    return _accepted(originator, conversation)


def _status_parameters(payout: SimPayout) -> list[dict[str, Any]]:
    """As the TransactionStatus page's sample: every value a string (its second DebitPartyName included)."""
    when = stamp(payout.completed_at)
    status = "Reversed" if payout.reversed else ("Completed" if payout.success else "Failed")
    parameters: list[dict[str, Any]] = [
        {"Key": "DebitPartyName", "Value": f"{payout.party_a} - Ongea Pesa"},
        {"Key": "DebitPartyName", "Value": f"{payout.party_b} - Simulated"},
        {"Key": "OriginatorConversationID", "Value": payout.originator_conversation_id},
        {"Key": "InitiatedTime", "Value": when},
        {
            "Key": "DebitAccountType",
            "Value": "Working Account" if payout.path == p.B2B else "Utility Account",
        },
        {"Key": "DebitPartyCharges", "Value": "Fee For B2C Payment|KES|22.40"},
        {"Key": "TransactionReason"},
        {"Key": "ReasonType", "Value": REASON.get(payout.command, payout.command)},
        {"Key": "TransactionStatus", "Value": status},
        {"Key": "FinalisedTime", "Value": when},
        {"Key": "Amount", "Value": str(payout.amount)},
        {"Key": "ConversationID", "Value": payout.conversation_id},
        {"Key": "ReceiptNo", "Value": payout.receipt},
    ]
    if not payout.success:  # why it failed (the page's sample is of a completed one)
        parameters += [
            {"Key": "ResultCode", "Value": str(payout.result_code)},
            {"Key": "ResultDesc", "Value": payout.result_desc},
        ]
    return parameters


async def _balance(sim: Simulator, request: web.Request) -> web.Response:
    body = await sim.body(request)
    if isinstance(body, web.Response):
        return body
    behaviour = sim.behaviour_for(request.path, body)
    refusal = sim.refusal(behaviour)
    if refusal is not None:
        return refusal
    originator, conversation = daraja_originator(), conversation_id()
    answer: dict[str, Any] = {
        "ResultType": "0",
        "OriginatorConversationID": originator,
        "ConversationID": conversation,
        "TransactionID": "OA90000000",
    }
    if not sim.initiator_ok(fields.text(body, "SecurityCredential")):
        answer["ResultCode"], answer["ResultDesc"] = str(INITIATOR_INVALID[0]), INITIATOR_INVALID[1]
    else:
        accounts = [
            ("Working Account", sim.working_balance),
            ("Float Account", Decimal(0)),
            ("Utility Account", sim.utility_balance),
            ("Charges Paid Account", Decimal("-1540.00")),
            ("Organization Settlement Account", Decimal(0)),
        ]
        text = "&".join(f"{name}|KES|{v:.2f}|{v:.2f}|0.00|0.00" for name, v in accounts)
        answer["ResultCode"], answer["ResultDesc"] = "0", "The service request is processed successfully"
        answer["ResultParameters"] = {
            "ResultParameter": [
                {"Key": "AccountBalance", "Value": text},
                {"Key": "BOCompletedTime", "Value": stamp(nairobi_now())},
            ]
        }
    answer["ReferenceData"] = {
        "ReferenceItem": {
            "Key": "QueueTimeoutURL",
            "Value": "https://internalsandbox.safaricom.co.ke/mpesa/abresults/v1/submit",
        }
    }
    if behaviour.callback != "none":
        sim.schedule(sim.delay(behaviour), fields.text(body, "ResultURL"), {"Result": answer})
    return _accepted(originator, conversation)


async def _reversal(sim: Simulator, request: web.Request) -> web.Response:
    """A reversal of a payment we made (its receipt): the money comes back to the account it left."""
    body = await sim.body(request)
    if isinstance(body, web.Response):
        return body
    behaviour = sim.behaviour_for(request.path, body)
    refusal = sim.refusal(behaviour)
    if refusal is not None:
        return refusal
    originator, conversation = daraja_originator(), conversation_id()
    original = _find(sim, "", fields.text(body, "TransactionID"))
    answer: dict[str, Any] = {
        "ResultType": 0,
        "OriginatorConversationID": originator,
        "ConversationID": conversation,
    }
    if not sim.initiator_ok(fields.text(body, "SecurityCredential")):
        answer["ResultCode"], answer["ResultDesc"] = INITIATOR_INVALID
    elif (
        original is None
        or original.reversed
        or not original.success
        or fields.amount(body) != original.amount
        or behaviour.outcome == "fail"
    ):
        answer["ResultCode"] = behaviour.result_code or NOT_FOUND[0]
        answer["ResultDesc"] = behaviour.result_desc or NOT_FOUND[1]
        answer["TransactionID"] = "SKE0000000"
    else:
        original.reversed = True
        if original.path == p.B2B:
            sim.working_balance += original.amount
        else:
            sim.utility_balance += original.amount
        answer["ResultCode"], answer["ResultDesc"] = 0, PROCESSED
        answer["TransactionID"] = receipt()
        answer["ResultParameters"] = {
            "ResultParameter": [
                {
                    "Key": "DebitAccountBalance",
                    "Value": f"Utility Account|KES|{sim.utility_balance:.2f}|0.00",
                },
                {"Key": "Amount", "Value": float(original.amount)},
                {"Key": "TransCompletedTime", "Value": int(stamp(nairobi_now()))},
                {"Key": "OriginalTransactionID", "Value": original.receipt},
                {"Key": "Charge", "Value": 0.00},
                {"Key": "CreditPartyPublicName", "Value": f"{original.party_b} - Simulated"},
                {"Key": "DebitPartyPublicName", "Value": f"{original.party_a} - Ongea Pesa"},
            ]
        }
    answer["ReferenceData"] = {
        "ReferenceItem": {
            "Key": "QueueTimeoutURL",
            "Value": "https://internalsandbox.safaricom.co.ke/mpesa/reversalresults/v1/submit",
        }
    }
    if behaviour.callback != "none":
        sim.schedule(sim.delay(behaviour), fields.text(body, "ResultURL"), {"Result": answer})
    return _accepted(originator, conversation)
