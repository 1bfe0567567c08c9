"""The read-back: a proposal said as the ledger recorded it (amount, recipient, fee, whether the yes will need
the PIN) with its card, and the check that a confirmation names exactly the version read back."""

from __future__ import annotations

import uuid
from decimal import Decimal

from intents.banks import bank_name
from voice_server.dialogue.phases import Phase
from voice_server.dialogue.state import Draft, LiveProposal, Show, Speak, recipient_of
from voice_server.dialogue.turn import Turn
from voice_server.dialogue.wording import Language, line, money, plain_amount, spoken_phone


def read_back(turn: Turn, p: LiveProposal, *, changed: bool) -> None:
    """The proposal said as the ledger holds it, and its card (what a yes or a tap confirms)."""
    if changed:
        turn.say("readback.changed")
    turn.say(f"readback.{p.type}", **describe(turn.lang, p))
    if p.wallet_name:  # a business wallet (sql/0028): the read-back names it
        turn.say("readback.from_wallet", wallet=p.wallet_name)
    if p.needs_approval:
        turn.say("readback.needs_approval")
    if p.type == "bank_to_mpesa":
        turn.say("readback.costs_deposit", fee=turn.money(p.fee), net=turn.money(p.amount - p.fee))
    elif p.fee > 0:
        turn.say("readback.costs", fee=turn.money(p.fee), total=turn.money(p.total))
    else:
        turn.say("readback.costs_free")
    turn.say("readback.question_pin" if p.needs_pin else "readback.question")
    readback = " ".join(a.text for a in turn.actions if isinstance(a, Speak) and a.key.startswith("readback"))
    params: dict[str, object] = {
        "proposal_id": str(p.proposal_id),
        "version": p.version,
        "type": p.type,
        "amount": plain_amount(p.amount),
        **recipient_of(p, filled=True),
        "fee": plain_amount(p.fee),
        "total": plain_amount(p.total),
        "needs_pin": p.needs_pin,
        "readback": readback,
    }
    if p.recipient_name:
        params["recipient_name"] = p.recipient_name
    if p.wallet_name:
        params["wallet_name"] = p.wallet_name
        params["needs_approval"] = p.needs_approval
    turn.actions.append(Show("show_proposal", params))


def describe(lang: Language, p: LiveProposal | Draft) -> dict[str, str]:
    """The words a proposal or draft is said with (amount, recipient, bank), in the turn's language."""
    amount = p.amount if p.amount is not None else Decimal("0")
    phone = spoken_phone(p.phone)
    recipient = (
        line(lang, "recipient.named", name=p.recipient_name, phone=phone)
        if p.recipient_name
        else line(lang, "recipient.phone", phone=phone)
    )
    return {
        "amount": money(lang, amount),
        "recipient": recipient,
        "name": p.recipient_name or phone,
        "till": p.till,
        "paybill": p.paybill,
        "account": p.account,
        "agent": p.agent,
        "store": p.store,
        "bank": bank_name(p.bank_code) or p.bank_code,
    }


def same_version(turn: Turn, proposal_id: uuid.UUID, version: int | None) -> bool:
    """A confirmation of another proposal, or of an older version of this one, is refused."""
    p = turn.state.proposal
    assert p is not None
    if proposal_id == p.proposal_id and (version is None or version == p.version):
        return True
    turn.say("rejected.stale_version")
    turn.state.phase = Phase.READ_BACK
    read_back(turn, p, changed=False)
    turn.note("rejected", rejected="stale_version")
    return False
