"""Handlers: receipts. A payout M-Pesa settled while the person is here: its card, and its line when the
plan speaks receipts (the driver says which). The phase stays as it was."""

from __future__ import annotations

from voice_server.dialogue.events import Event, PayoutSettled
from voice_server.dialogue.receipt_words import receipt_text
from voice_server.dialogue.state import Show, Speak
from voice_server.dialogue.turn import Turn
from voice_server.dialogue.wording import plain_amount


def tell_receipt(turn: Turn, event: Event) -> None:
    """A payout settled while the person is here: its card, and (when the plan speaks receipts) its line.
    Whatever was under way (a read-back, a PIN) stays as it was."""
    assert isinstance(event, PayoutSettled)
    text = receipt_text(turn.lang, event)
    if event.spoken:
        turn.actions.append(Speak(text, turn.lang, "receipt." + event.status))
    card: dict[str, object] = {
        "transaction_id": str(event.transaction_id),
        "status": event.status,
        "balance": plain_amount(event.balance),
        "reference": event.reference,
        "amount": plain_amount(event.amount),
        "fee": plain_amount(event.fee),
        "text": text,
    }
    if event.wallet_name:  # white label: the business it was paid from
        card["wallet_name"] = event.wallet_name
    turn.actions.append(Show("show_receipt", card))
    turn.note("receipt", balance=event.balance)
