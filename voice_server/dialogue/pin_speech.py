"""A PIN said aloud: recognised before anything else reads the utterance, so that it is never taken for an
amount, a correction or a command, and nothing of it is kept (spec: ledger.md, "Who may spend").

A PIN is 4 to 6 digits, said as digits ("7392", "7 3 9 2") or as number words, English or Swahili ("seven
three nine two", "saba tatu tisa mbili"). What counts as one depends on where the conversation is:
- anywhere, digits next to the word PIN ("pin 7 3 9 2", "my pin is seven three nine two", "namba ya siri
  ni 7392");
- when a PIN is what comes next (the PIN step, or a read-back), an utterance of nothing but 4 to 6 digits;
- elsewhere, 4 to 6 digits said one by one ("seven three nine two", "7 3 9 2") and nothing else, unless the
  question asked is for a number said the same way (a till, a paybill, an account, an agent or a store).
Pure: no I/O, no state.
"""

from __future__ import annotations

import re

# Digits as words: English (with "oh" for zero) and Swahili.
DIGIT_WORDS: dict[str, str] = {
    "zero": "0",
    "oh": "0",
    "o": "0",
    "one": "1",
    "two": "2",
    "three": "3",
    "four": "4",
    "five": "5",
    "six": "6",
    "seven": "7",
    "eight": "8",
    "nine": "9",
    "sifuri": "0",
    "moja": "1",
    "mbili": "2",
    "tatu": "3",
    "nne": "4",
    "tano": "5",
    "sita": "6",
    "saba": "7",
    "nane": "8",
    "tisa": "9",
}
# Words that name a PIN ("nambari ya siri": a secret number).
PIN_WORDS = frozenset({"pin", "pini", "siri", "passcode", "password"})
# Words that may sit around a PIN said aloud without making it something else.
FILLER = frozenset(
    {
        "my",
        "is",
        "it",
        "its",
        "it's",
        "the",
        "code",
        "number",
        "namba",
        "nambari",
        "ya",
        "yangu",
        "ni",
        "here",
        "hii",
        "ok",
        "okay",
        "um",
        "uh",
        "eh",
        "so",
        "and",
        "na",
        "please",
        "tafadhali",
    }
)
# Slots whose answer is a number said digit by digit: such an answer is not a PIN.
DIGIT_SLOTS = frozenset({"till", "paybill", "account", "agent", "store", "recipient"})

_TOKEN = re.compile(r"[a-z0-9']+")


def _tokens(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


def _digits(token: str) -> str | None:
    """The digits a token says ("7392", "7", "seven"), or None when it says something else."""
    if token.isascii() and token.isdigit():
        return token
    return DIGIT_WORDS.get(token)


def _is_pin(digits: str) -> bool:
    return 4 <= len(digits) <= 6


def _run_digits(toks: list[str], start: int, step: int) -> str:
    """The digits said from `start` on, going `step` (1 or -1), over fillers, up to the first other word."""
    said: list[str] = []
    i = start
    while 0 <= i < len(toks):
        d = _digits(toks[i])
        if d is not None:
            said.append(d)
        elif toks[i] not in FILLER:
            break
        i += step
    return "".join(said if step == 1 else reversed(said))


def is_spoken_pin(text: str, *, pin_next: bool = False, asked: str | None = None) -> bool:
    """Whether `text` is a PIN said aloud. `pin_next`: the PIN is what the person is about to give (the PIN
    step, a read-back); `asked`: the slot asked, when one is."""
    toks = _tokens(text)
    if not toks:
        return False
    for i, tok in enumerate(toks):
        if tok in PIN_WORDS and (
            _is_pin(_run_digits(toks, i + 1, 1)) or _is_pin(_run_digits(toks, i - 1, -1))
        ):
            return True  # "pin 7 3 9 2", "my pin is 7392", "7392 ndio pin": a PIN whatever else is said
    said = [d for d in map(_digits, toks) if d is not None]
    if any(_digits(t) is None and t not in FILLER and t not in PIN_WORDS for t in toks):
        return False
    if not _is_pin("".join(said)):
        return False
    if pin_next:
        return True  # only digits, when the PIN comes next
    one_by_one = len(said) >= 4 and all(len(d) == 1 for d in said)
    return one_by_one and asked not in DIGIT_SLOTS
