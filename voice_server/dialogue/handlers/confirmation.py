"""Handlers: the proposal and its confirmation. The ledger's proposal is read back; a yes, a tap or the
agent's confirm tool of exactly that version confirms it (or goes on to the PIN step when the ledger said
the confirmation needs it); the ledger's commit or refusal is told."""

from __future__ import annotations

from decimal import Decimal

from voice_server.dialogue.drafts import contact_name_by_phone
from voice_server.dialogue.events import (
    Committed,
    ConfirmRefused,
    Event,
    ProposalMade,
    ProposalRefused,
    Tap,
    ToolConfirm,
)
from voice_server.dialogue.handlers.pin import ask_pin
from voice_server.dialogue.phases import Phase
from voice_server.dialogue.readback import describe, read_back, same_version
from voice_server.dialogue.state import Cancel, Confirm, LiveProposal, Show, recipient_of
from voice_server.dialogue.turn import Turn, has_rejection, reset
from voice_server.dialogue.wording import plain_amount


def proposal_made(turn: Turn, event: Event) -> None:
    """The ledger recorded the proposal: read back exactly what it holds (its fee, its `needs_pin`)."""
    assert isinstance(event, ProposalMade)
    s = turn.state
    v = event.proposal
    name = s.draft.recipient_name if s.draft is not None else ""
    if not name and v.phone:
        name = contact_name_by_phone(v.phone, turn.world)
    changed = s.revising
    s.proposal = LiveProposal(
        proposal_id=v.proposal_id,
        version=v.version,
        type=v.type,
        amount=v.amount,
        fee=v.fee,
        phone=v.phone,
        till=v.till,
        paybill=v.paybill,
        account=v.account,
        agent=v.agent,
        store=v.store,
        bank_code=v.bank_code,
        recipient_name=name,
        expires_at=v.expires_at_epoch,
        needs_pin=v.needs_pin,
        wallet_name=v.wallet_name,
        needs_approval=v.needs_approval,
    )
    s.phase, s.draft, s.unclear, s.revising, s.confirm_voice = Phase.READ_BACK, None, 0, False, False
    read_back(turn, s.proposal, changed=changed)
    turn.note("proposed")


def proposal_refused(turn: Turn, event: Event) -> None:
    """The ledger said no before read-back: nothing was written (a refused revision drops the old one)."""
    assert isinstance(event, ProposalRefused)
    s = turn.state
    cancelled = s.revising and s.proposal is not None
    if s.revising and s.proposal is not None:
        turn.actions.append(Cancel(s.proposal.proposal_id, f"revision refused: {event.code}"))
    reset(s)
    code = event.code
    key = f"rejected.{code}" if has_rejection(code) else "rejected.generic"
    wallet = event.wallet if event.wallet is not None else Decimal("0")
    available = event.available if event.available is not None else wallet
    turn.say(key, wallet=turn.money(wallet), available=turn.money(available))
    turn.note("rejected", rejected=code, cancelled=cancelled, balance=event.wallet)


def accept_spoken(turn: Turn, event: Event) -> None:
    """A spoken yes to the proposal read back (or the agent's confirm tool, which is a spoken yes)."""
    if isinstance(event, ToolConfirm) and not same_version(turn, event.proposal_id, event.version):
        return
    _accept(turn, voice=True, tool=isinstance(event, ToolConfirm))


def accept_tap(turn: Turn, event: Event) -> None:
    """A tap on the card: never voice-verified, and only for the version the card shows."""
    assert isinstance(event, Tap)
    if not same_version(turn, event.proposal_id, event.version):
        return
    _accept(turn, voice=False)


def _accept(turn: Turn, *, voice: bool, tool: bool = False) -> None:
    """A yes to the proposal: confirmed at once, or (the ledger said it needs the PIN) the PIN asked for."""
    s = turn.state
    p = s.proposal
    assert p is not None
    s.confirm_voice, s.confirm_tool = voice, tool
    if p.needs_pin:
        ask_pin(turn, tool=tool)
        return
    s.phase = Phase.CONFIRMING
    turn.actions.append(Confirm(p.proposal_id, p.version, voice))


def committed(turn: Turn, event: Event) -> None:
    """The ledger posted it: said, with the receipt card and the balance after it."""
    assert isinstance(event, Committed)
    s = turn.state
    p = s.proposal
    assert p is not None
    words = describe(turn.lang, p)
    if event.status == "awaiting_approval":  # a business spender's payment above their approval amount
        turn.say("committed.awaiting_approval", wallet=event.details.get("business_name", ""), **words)
    elif event.type == "bank_to_mpesa":
        paybill = event.details.get("paybill", "")
        reference = event.details.get("reference", "")
        if paybill and reference:
            turn.say("committed.bank_to_mpesa_paybill", paybill=paybill, reference=reference, **_minus(words))
        else:
            turn.say("committed.bank_to_mpesa", **words)
    else:
        turn.say(f"committed.{event.type}", **words)
        turn.say("committed.balance", balance=turn.money(event.wallet_balance))
    receipt: dict[str, object] = {
        "transaction_id": str(event.transaction_id),
        "status": event.status,
        "balance": plain_amount(event.wallet_balance),
        **{k: v for k, v in event.details.items() if k in ("paybill", "reference")},
    }
    turn.actions.append(Show("show_receipt", receipt))
    result: dict[str, object] = {
        "transaction_id": str(event.transaction_id),
        "version": event.version,
        "type": event.type,
        "amount": plain_amount(event.amount),
        **recipient_of(p, filled=True),
        "fee": plain_amount(event.fee),
        "status": event.status,
        "voice_verified": event.voice_verified,
        "balance": plain_amount(event.wallet_balance),
        **event.details,
    }
    reset(s)
    turn.note("committed", committed=result, balance=event.wallet_balance)


def _minus(words: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in words.items() if k not in ("paybill",)}


def confirm_refused(turn: Turn, event: Event) -> None:
    """The ledger refused the confirmation: `pin_required` goes on to the PIN step, any other code cancels."""
    assert isinstance(event, ConfirmRefused)
    s = turn.state
    p = s.proposal
    assert p is not None
    code = event.code
    if code == "pin_required":
        # The ledger found this payment needs the PIN after all (the allowance was used meanwhile): the same
        # proposal goes on to the PIN step, and the read-back's card will ask for it from now on.
        s.proposal = p.model_copy(update={"needs_pin": True})
        ask_pin(turn, tool=s.confirm_tool)
        return
    turn.actions.append(Cancel(p.proposal_id, f"confirm refused: {code}"))
    reset(s)
    wallet = event.wallet if event.wallet is not None else Decimal("0")
    turn.say(
        f"rejected.{code}" if has_rejection(code) else "rejected.generic",
        wallet=turn.money(wallet),
        available=turn.money(event.available if event.available is not None else wallet),
    )
    turn.note("rejected", rejected=code, cancelled=True, balance=event.wallet)
