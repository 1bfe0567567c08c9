"""A kept conversation as a replay transcript (shared/spec/transcripts.md): a complaint ("I asked for 500 and
it read back 5,000") becomes a file `ongea-pesa replay` runs.

The session's turns (`voice_session_turns`), what the user had when it began (`voice_session_openings`) and
the ledger's rows of the session are read; each turn becomes the input it was (speech, a tap, a PIN, an agent
tool's call, a receipt while time passed) with what the assistant did then as its expectation, and the final
balance and transactions are what the session left. A PIN's digits were never kept, so the export makes one
up (never the user's own) and types a wrong one where a wrong one was typed.

`redact` replaces every name and phone number consistently (the same person, the same made-up name and a
valid made-up Kenyan number, written in the shape the original was), keeping amounts, billers and the words of
the command; the made-up names are the exported contacts' names, so the replayed parser still finds them.
"""

from __future__ import annotations

import hashlib
import random
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import asyncpg
import yaml

from intents.models import RECIPIENT_FIELDS
from intents.phones import normalise_phone
from ledger.pins import verify_pin, weak_pin_reason
from voice_server.conversation.records import SPOKEN_PIN

# Proposal and commit fields that say what the transaction is (ids and expiry times differ on every run).
_PROPOSAL_KEYS = ("type", "amount", "fee", "version", "needs_pin", "recipient_name")
_COMMITTED_KEYS = ("type", "amount", "fee", "status", "voice_verified")
_FINAL_KEYS = ("type", "amount", "fee", "status", "voice_verified")
# A pause this long between two turns is replayed as a `wait:` (a proposal's expiry depends on it).
WAIT_GAP_SECONDS = 30.0
# Sentences that name what differs on every run (an M-Pesa receipt code, a clock time) are not expected.
# A code is ten capitals and digits; it may hold no digit at all (SMRPSZHUSC), so none is required.
_UNSTABLE = re.compile(r"\b(?=[A-Z0-9]*[A-Z])[A-Z0-9]{10}\b|\b\d{1,2}:\d{2}\b")
# A Kenyan mobile number as it is written or said: 0712 345 678, 0712345678, 254712345678, +254..., 712345678.
_PHONE = re.compile(r"(?<![\d+])(\+?254|0)?([17]\d{2}[ -]?\d{3}[ -]?\d{3})(?!\d)")


class ExportError(Exception):
    """The session cannot be exported (no such session for this reader)."""


@dataclass
class Kept:
    """What the server kept of one session."""

    session_id: str
    user_id: uuid.UUID
    language: str | None
    opening: dict[str, Any] | None
    turns: list[dict[str, Any]]
    transactions: list[dict[str, Any]]
    balance_change: Decimal
    pin_hash: str | None = None


_SESSION = "SELECT id, user_id, language FROM voice_sessions WHERE session_id = $1"
_OPENING = """SELECT wallet_balance, plan, pin_set, language, contacts
              FROM voice_session_openings WHERE voice_session_id = $1"""
_TURNS = """SELECT seq, at, input_kind, heard, asr_confidence, tap, answered, proposal, outcome, asked,
                   rejected, committed, balance, language, channel, tool_name, tool_parameters, cancelled
            FROM voice_session_turns WHERE voice_session_id = $1 ORDER BY seq"""
_TRANSACTIONS = """SELECT id, type, amount, fee, status, phone, till, paybill, account, agent, store,
                          bank_code, voice_verified, error_message
                   FROM transactions WHERE session_id = $1 AND user_id = $2 ORDER BY created_at, id"""
_CHANGE = """SELECT coalesce(sum(change_amount), 0) FROM balance_history
             WHERE user_id = $1 AND transaction_id = ANY($2::uuid[])"""


async def load_kept(conn: asyncpg.Connection | asyncpg.Pool, session_id: str) -> Kept:
    """Reads the session on `conn`: as the server, or as a user (`ledger.reads.as_user`), where row level
    security shows only that user's own session; another user's is `ExportError`, as a missing one is."""
    if not isinstance(session_id, str) or not session_id or len(session_id) > 200:
        raise ExportError("no such voice session")
    session = await conn.fetchrow(_SESSION, session_id)
    if session is None:
        raise ExportError("no such voice session")
    opening = await conn.fetchrow(_OPENING, session["id"])
    turns = [dict(r) for r in await conn.fetch(_TURNS, session["id"])]
    transactions = [dict(r) for r in await conn.fetch(_TRANSACTIONS, session_id, session["user_id"])]
    change = await conn.fetchval(_CHANGE, session["user_id"], [t["id"] for t in transactions])
    return Kept(
        session_id=session_id,
        user_id=session["user_id"],
        language=session["language"],
        opening=dict(opening) if opening is not None else None,
        turns=turns,
        transactions=transactions,
        balance_change=Decimal(change),
    )


# --- redaction ---------------------------------------------------------------------------------------------

_FIRST = (
    "Achieng",
    "Wanjiru",
    "Kiprop",
    "Nafula",
    "Odhiambo",
    "Chebet",
    "Mwende",
    "Wekesa",
    "Auma",
    "Kiptoo",
)
_LAST = ("Onyango", "Njeri", "Barasa", "Jepkosgei", "Mutua", "Akinyi", "Ndungu", "Cherono", "Makau", "Owino")
_NICK = (
    "Shiro",
    "Nyokabi",
    "Kemunto",
    "Moraa",
    "Adhiambo",
    "Wairimu",
    "Nekesa",
    "Jelimo",
    "Atieno",
    "Kerubo",
)


def _clash(word: str, originals: Iterable[str]) -> bool:
    w = word.lower()
    return any(o and (o in w or w in o) for o in originals)


@dataclass
class Redactor:
    """One export's consistent replacements: names (whole, and word by word) and phone numbers."""

    seed: str
    names: dict[str, str] = field(default_factory=dict)  # an original word or name -> its made-up one
    phones: dict[str, str] = field(default_factory=dict)  # 2547XXXXXXXX -> 2547XXXXXXXX

    def __post_init__(self) -> None:
        self._rng = random.Random(hashlib.sha256(self.seed.encode()).digest())
        self._originals: set[str] = set()

    def learn(self, contacts: list[dict[str, Any]], phones: Iterable[str]) -> None:
        """Picks a made-up name for every contact and a made-up number for every phone, before any text is
        rewritten, so that no made-up word is also an original one."""
        for c in contacts:
            for text in (c.get("name"), c.get("nickname")):
                self._originals.update(w.lower() for w in re.findall(r"\w+", text or "") if len(w) > 1)
        firsts = [n for n in _FIRST if not _clash(n, self._originals)]
        lasts = [n for n in _LAST if not _clash(n, self._originals)]
        nicks = [n for n in _NICK if not _clash(n, self._originals)]
        for lst in (firsts, lasts, nicks):
            self._rng.shuffle(lst)
        for c in contacts:
            name = str(c.get("name") or "")
            if name and name.lower() not in self.names:
                words = name.split()
                made = [firsts.pop() if i == 0 else lasts.pop() for i in range(len(words))]
                self.names[name.lower()] = " ".join(made)
                for old, new in zip(words, made, strict=True):
                    self.names.setdefault(old.lower(), new)
            nick = str(c.get("nickname") or "")
            if nick and nick.lower() not in self.names:
                self.names[nick.lower()] = nicks.pop()
        for phone in phones:
            self.phone(phone)

    def phone(self, phone: str) -> str:
        """The made-up number of a 2547XXXXXXXX number (valid, and never one of the originals)."""
        if phone not in self.phones:
            taken = set(self.phones) | set(self.phones.values())
            while True:
                made = "2547" + "".join(self._rng.choice("0123456789") for _ in range(8))
                if made not in taken and normalise_phone(made) == made:
                    break
            self.phones[phone] = made
        return self.phones[phone]

    def text(self, text: str) -> str:
        """Names and numbers in a sentence replaced; a number keeps its shape (0712 345 678 stays spaced)."""
        out = _PHONE.sub(self._phone_match, text)
        if not self.names:
            return out
        words = "|".join(re.escape(w) for w in sorted(self.names, key=len, reverse=True))
        return re.sub(rf"(?<!\w)(?:{words})(?!\w)", self._name_match, out, flags=re.IGNORECASE)

    def _name_match(self, m: re.Match[str]) -> str:
        return _same_case(m.group(0), self.names[m.group(0).lower()])

    def _phone_match(self, m: re.Match[str]) -> str:
        prefix, national = m.group(1) or "", m.group(2)
        normal = normalise_phone(prefix + national.replace(" ", "").replace("-", ""))
        if normal is None:
            return m.group(0)
        digits = iter(self.phone(normal)[3:])
        return prefix + "".join(next(digits) if ch.isdigit() else ch for ch in national)

    def value(self, value: Any) -> Any:
        """Any exported value, its strings rewritten."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {k: self.value(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.value(v) for v in value]
        return value


def _same_case(original: str, made: str) -> str:
    if original.islower():
        return made.lower()
    if original.isupper() and len(original) > 1:
        return made.upper()
    return made


def _phones_of(kept: Kept) -> list[str]:
    """Every phone number the session holds, normalised."""
    found: list[str] = []
    texts: list[str] = []
    for c in (kept.opening or {}).get("contacts") or []:
        texts.append(str(c.get("phone_number") or ""))
    for t in kept.turns:
        texts.extend([t["heard"] or "", *t["answered"], str(t["proposal"] or ""), str(t["committed"] or "")])
        texts.append(str(t["tool_parameters"] or ""))
    texts.extend(str(t["phone"] or "") for t in kept.transactions)
    for text in texts:
        for m in _PHONE.finditer(text):
            normal = normalise_phone((m.group(1) or "") + m.group(2).replace(" ", "").replace("-", ""))
            if normal and normal not in found:
                found.append(normal)
    return found


# --- the transcript ----------------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return f"{value:.2f}"
    return value


def _picked(source: dict[str, Any] | None, keys: Iterable[str]) -> dict[str, Any]:
    if not source:
        return {}
    return {k: _plain(source[k]) for k in keys if source.get(k) not in (None, "")}


def made_up_pins(seed: str, pin_hash: str | None) -> tuple[str, str]:
    """A PIN for the replayed user and a wrong one, neither weak nor the user's own."""
    rng = random.Random(hashlib.sha256(("pin" + seed).encode()).digest())
    picked: list[str] = []
    while len(picked) < 2:
        pin = f"{rng.randrange(10_000):04d}"
        if weak_pin_reason(pin) is None and pin not in picked and not verify_pin(pin_hash, pin):
            picked.append(pin)
    return picked[0], picked[1]


def _stable(sentence: str) -> bool:
    return not _UNSTABLE.search(sentence)


def _expect(turn: dict[str, Any]) -> dict[str, Any]:
    """What the assistant did in reply to this turn, as the replay's expectation of it."""
    expect: dict[str, Any] = {}
    if turn["outcome"] == "proposed" and turn["proposal"]:
        expect["proposed"] = _picked(turn["proposal"], (*_PROPOSAL_KEYS, *RECIPIENT_FIELDS))
    if turn["asked"]:
        expect["asked"] = turn["asked"]
    if turn["committed"]:
        expect["committed"] = _picked(turn["committed"], (*_COMMITTED_KEYS, *RECIPIENT_FIELDS))
    if turn["cancelled"]:
        expect["cancelled"] = True
    if turn["rejected"]:
        expect["rejected"] = turn["rejected"]
    if turn["balance"] is not None:
        expect["balance"] = _plain(turn["balance"])
    said = [s for s in turn["answered"] if s and _stable(s)]
    if said:
        expect["say_contains"] = said
    expect["language"] = turn["language"]
    if not turn["committed"]:
        expect["nothing_committed"] = True
    return expect


def _input(turn: dict[str, Any], pins: tuple[str, str]) -> dict[str, Any] | None:
    kind = turn["input_kind"]
    if kind == "utterance":
        heard = turn["heard"] or ""
        if heard == SPOKEN_PIN:  # said aloud and not kept: said again, as a made-up PIN
            heard = f"my PIN is {pins[0]}"
        spoken: dict[str, Any] = {"user": heard}
        if turn["asr_confidence"] is not None:
            spoken["asr_confidence"] = float(turn["asr_confidence"])
        return spoken
    if kind == "tap":
        return {"tap": turn["tap"]}
    if kind == "pin":
        wrong = turn["rejected"] in ("wrong_pin", "pin_locked")
        return {"pin": pins[1] if wrong else pins[0]}
    if kind == "tool":
        params = {k: v for k, v in (turn["tool_parameters"] or {}).items() if k != "proposal_id"}
        return {"tool": {"name": turn["tool_name"], "parameters": params}}
    if kind == "receipt":  # a payout settled while the person was quiet: time passes in the replay
        return {"wait": 1}
    return None


def to_transcript(kept: Kept, *, redact: bool = False) -> dict[str, Any]:
    """The replay transcript of a kept session, as a YAML-ready mapping."""
    if kept.opening is None:
        raise ExportError("this session's opening state was not kept (it began before transcript export)")
    opening = kept.opening
    contacts = [
        {
            "name": c["name"],
            "phone_number": c["phone_number"],
            **({"nickname": c["nickname"]} if c.get("nickname") else {}),
        }
        for c in opening["contacts"] or []
        if c.get("name") and c.get("phone_number")
    ]
    pins = made_up_pins(kept.session_id, kept.pin_hash)
    user: dict[str, Any] = {"balance": _plain(Decimal(opening["wallet_balance"])), "plan": opening["plan"]}
    if opening["pin_set"]:
        user["pin"] = pins[0]
    user["contacts"] = contacts
    if opening["language"] in ("en", "sw"):
        user["language"] = opening["language"]
    turns: list[dict[str, Any]] = []
    previous = None
    for turn in kept.turns:
        if previous is not None and turn["input_kind"] != "receipt":
            gap = (turn["at"] - previous).total_seconds()
            if gap >= WAIT_GAP_SECONDS:
                turns.append({"wait": round(gap)})
        previous = turn["at"]
        spec = _input(turn, pins)
        if spec is not None:
            turns.append({**spec, "expect": _expect(turn)})
    failed = any(t["status"] == "failed" for t in kept.transactions)
    final = {
        "balance": _plain(Decimal(opening["wallet_balance"]) + kept.balance_change),
        "transactions": [_picked(t, (*_FINAL_KEYS, *RECIPIENT_FIELDS)) for t in kept.transactions],
    }
    data: dict[str, Any] = {
        "name": f"session {kept.session_id}" + (" (redacted)" if redact else ""),
        "user": user,
    }
    if failed:
        data["gateway"] = {"result": "failed"}
    data["turns"] = turns
    data["final"] = final
    if redact:
        redactor = Redactor(kept.session_id)
        redactor.learn(contacts, _phones_of(kept))
        data = {**redactor.value({k: v for k, v in data.items() if k != "name"}), "name": data["name"]}
        data = {"name": data["name"], **{k: v for k, v in data.items() if k != "name"}}
    return data


def dump(data: dict[str, Any]) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=110)


__all__ = ["ExportError", "Kept", "Redactor", "dump", "load_kept", "made_up_pins", "to_transcript"]
