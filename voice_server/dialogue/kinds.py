"""What an event is, as the transition table names it. `StrEnum`: the names stay the strings they were."""

from __future__ import annotations

from enum import StrEnum


class EventKind(StrEnum):
    # What the person says (`classify.speech_kind`), taps, types, or the agent's tools do.
    TICK = "tick"  # time passes
    YES = "yes"
    NO = "no"  # a bare refusal
    CHANGE = "change"  # a correction: "no, make it 700"
    COMMAND = "command"  # a transaction request
    OTHER = "other"
    BALANCE = "balance"
    HISTORY = "history"
    SPENDING = "spending"  # a `spending_summary` question
    HELP = "help"
    GOODBYE = "goodbye"
    PIN_ALOUD = "pin_aloud"  # a PIN said out loud: never used
    PIN = "pin"  # typed on the app's keypad
    TAP_CONFIRM = "tap_confirm"  # never voice-verified
    TAP_CANCEL = "tap_cancel"
    TOOL_PROPOSE = "tool_propose"
    TOOL_CONFIRM = "tool_confirm"
    TOOL_CANCEL = "tool_cancel"
    # The ledger's answers to the dialogue's actions, fed back by the driver.
    PROPOSAL_MADE = "proposal_made"
    PROPOSAL_REFUSED = "proposal_refused"
    COMMITTED = "committed"
    CONFIRM_REFUSED = "confirm_refused"
    PIN_RESULT = "pin_result"
    BALANCE_TOLD = "balance_told"
    HISTORY_TOLD = "history_told"
    SPENDING_TOLD = "spending_told"
    PAYOUT_SETTLED = "payout_settled"  # a payout M-Pesa settled: its receipt
