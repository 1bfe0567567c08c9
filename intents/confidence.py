"""How sure the parser is, as one integer 0..100 made of named, explainable factors.

The product only acts without asking when confidence >= 80, so every factor below is tuned so that any
real doubt on its own pulls a clean 97 under 80: the spec's rule is "when unsure, ask".
"""

from __future__ import annotations

from dataclasses import dataclass

# Speech is never 100% certain: a perfectly clean parse scores this.
BASE = 0.97
# Each word we did not understand: it might have been "don't", "not", a second name... One is enough to ask.
PER_UNKNOWN_WORD = 0.78
# Each contradiction (two amounts, two recipients, a slot for another transaction type): ask.
PER_CONFLICT = 0.7
# A self-correction inside the utterance ("500 no 600"): the later value is used; the read-back confirms it.
CORRECTION = 0.8
# A contact found only through a short form of its name ("Kevo" for Kevin): the read-back decides.
SHORT_NAME = 0.78
# A contact's score lead over the next-best contact at which the margin stops mattering.
CLEAR_LEAD = 30.0


@dataclass
class Evidence:
    """What the parser observed; `score` turns it into a number."""

    tokens: int = 0
    unknown: int = 0  # tokens that are neither vocabulary, number, bank nor the matched name
    amount: float = 1.0  # 1.0 clean digits/words; lower for slips (to/for), spaced or conflicting amounts
    recipient: float = 1.0  # 1.0 written number or exact name; lower for spoken digits or fuzzy names
    contact_lead: float | None = None  # best contact score minus the next contact's (None: no rival)
    conflicts: int = 0
    asr: float | None = None  # the recogniser's own confidence, 0..1


def coverage_factor(e: Evidence) -> float:
    """How much of the utterance was understood: every unknown word costs a fixed share."""
    return float(PER_UNKNOWN_WORD**e.unknown)


def margin_factor(e: Evidence) -> float:
    """How clearly the best contact beat the next one: a near tie is a question, not an answer."""
    if e.contact_lead is None:
        return 1.0
    # 0.7 for a dead heat (which never gets here: that is `candidates`), rising to 1.0 at CLEAR_LEAD.
    return min(1.0, 0.7 + 0.3 * max(0.0, e.contact_lead) / CLEAR_LEAD)


def asr_factor(e: Evidence) -> float:
    """The recogniser's confidence multiplies ours: a garbled transcript cannot make a sure intent."""
    if e.asr is None:
        return 1.0
    return max(0.0, min(1.0, e.asr))


def score(e: Evidence, *, actionable: bool) -> int:
    """Product of the factors, 0..100; an intent that still needs a slot is capped well below 80."""
    value = (
        BASE
        * coverage_factor(e)
        * e.amount
        * e.recipient
        * margin_factor(e)
        * (PER_CONFLICT**e.conflicts)
        * asr_factor(e)
    )
    if not actionable:
        value = min(value, 0.5)
    return max(0, min(100, round(value * 100)))
