"""Handlers: balance, history and spending questions. Asked in any open phase: the dialogue asks the ledger
(`fetching`), says the answer, and goes back to the phase it was asked in, asking its question again."""

from __future__ import annotations

from intents import parse
from voice_server.dialogue.drafts import contact_name
from voice_server.dialogue.events import AskHistory, BalanceTold, Event, HistoryTold, SpendingTold, Utterance
from voice_server.dialogue.phases import Phase
from voice_server.dialogue.state import FetchBalance, FetchHistory, FetchSpending, Show
from voice_server.dialogue.turn import MAX_TEXT, Turn, reprompt, resting_phase
from voice_server.dialogue.wording import line, plain_amount, spoken_phone


def fetch_balance(turn: Turn, event: Event) -> None:
    """A balance question: the ledger is asked, the phase it was asked in is kept to come back to."""
    turn.state.resume = resting_phase(turn.state.phase)
    turn.state.phase = Phase.FETCHING
    turn.actions.append(FetchBalance())


def fetch_history(turn: Turn, event: Event) -> None:
    """A history question (at most 10 items), asked like the balance."""
    limit = event.limit if isinstance(event, AskHistory) else 5
    turn.state.resume = resting_phase(turn.state.phase)
    turn.state.phase = Phase.FETCHING
    turn.actions.append(FetchHistory(max(1, min(limit, 10))))


def told_balance(turn: Turn, event: Event) -> None:
    """The ledger's balance, said (and what is held, when it differs); then back where it was asked."""
    assert isinstance(event, BalanceTold)
    s = turn.state
    s.phase = s.resume or Phase.IDLE
    s.resume = None
    turn.say("balance.wallet", wallet=turn.money(event.wallet))
    if event.available != event.wallet:
        turn.say("balance.held", available=turn.money(event.available))
    turn.actions.append(Show("balance_update", {"balance": plain_amount(event.wallet)}))
    reprompt(turn)
    turn.note("answered", balance=event.wallet)


def told_history(turn: Turn, event: Event) -> None:
    """The last transactions, said one by one; then back where it was asked."""
    assert isinstance(event, HistoryTold)
    s = turn.state
    s.phase = s.resume or Phase.IDLE
    s.resume = None
    if not event.items:
        turn.say("history.none")
    else:
        turn.say("history.intro")
        for item in event.items:
            what = line(turn.lang, f"what.{item.type}", **_names(item.recipient))
            status = line(turn.lang, f"status.{item.status}")
            turn.say("history.item", amount=turn.money(item.amount), what=what, status=status)
    reprompt(turn)
    turn.note("answered")


def _names(recipient: str) -> dict[str, str]:
    return {"recipient": recipient, "till": recipient, "paybill": recipient}


def fetch_spending(turn: Turn, event: Event) -> None:
    """A spending question, answered like the balance: the figures are asked for, then said."""
    period, phone, paybill, till, recipient = "this_month", "", "", "", ""
    if isinstance(event, Utterance):
        parsed = parse(event.text[:MAX_TEXT], turn.world.contacts)
        period = parsed.period or "this_month"
        phone, paybill, till = parsed.phone, parsed.paybill, parsed.till
        if phone:
            recipient = contact_name(parsed.contact_id, turn.world) or spoken_phone(phone)
        elif paybill:
            recipient = f"paybill {paybill}"
        elif till:
            recipient = f"till {till}"
    turn.state.resume = resting_phase(turn.state.phase)
    turn.state.phase = Phase.FETCHING
    turn.actions.append(FetchSpending(period, phone, paybill, till, recipient))


def told_spending(turn: Turn, event: Event) -> None:
    """The spending figures (or that the plan does not give them); then back where it was asked."""
    assert isinstance(event, SpendingTold)
    s = turn.state
    s.phase = s.resume or Phase.IDLE
    s.resume = None
    if not event.allowed:
        turn.say("spending.plan")
        reprompt(turn)
        turn.note("rejected", rejected="plan_required")
        return
    when = line(turn.lang, f"spending.periods.{event.period}")
    to = {"recipient": event.recipient} if event.recipient else {}
    if event.count == 0:
        turn.say("spending.none_to" if to else "spending.none", period=when, **to)
    else:
        turn.say(
            "spending.total_to" if to else "spending.total",
            period=when,
            total=turn.money(event.total),
            fees=turn.money(event.fees),
            payments=line(
                turn.lang, "spending.one" if event.count == 1 else "spending.many", count=event.count
            ),
            **to,
        )
        if event.top and not to:
            turn.say("spending.top", names=f" {line(turn.lang, 'ask.or')} ".join(event.top[:3]))
    before = line(turn.lang, f"spending.before.{event.period}")
    change = event.total - event.previous_total
    key = "spending.more" if change > 0 else "spending.less" if change < 0 else "spending.same"
    turn.say(key, change=turn.money(abs(change)), previous=before)
    reprompt(turn)
    turn.note("answered")
