"""Transcripts (shared/spec/transcripts.md): the YAML format, loading with errors that name the file and the
field, and the checks of each turn's expectations and of the final ledger, worded for people.

Nothing here runs a conversation: `replay.py` drives the local driver, and a `--server` replayer can drive a
running server with the same loading and checking."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

Plan = Literal["free", "basic", "pro", "business"]


class TranscriptError(Exception):
    """A transcript that cannot be replayed: names the file and the field."""

    def __init__(self, path: str, field_name: str, message: str) -> None:
        super().__init__(f"{path}: {field_name}: {message}")
        self.path = path
        self.field = field_name
        self.message = message


def _decimal_text(value: object) -> str:
    if isinstance(value, bool) or value is None:
        raise ValueError('must be an amount such as "500.00"')
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError(f"{value!r} is not an amount") from None
    if not amount.is_finite() or amount < 0:
        raise ValueError(f"{value!r} is not an amount")
    return f"{amount.quantize(Decimal('0.01')):.2f}"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ContactSpec(_Model):
    name: str = Field(min_length=1, max_length=200)
    phone_number: str = Field(min_length=1, max_length=40)
    nickname: str | None = Field(default=None, max_length=200)

    @field_validator("phone_number", mode="before")
    @classmethod
    def _text(cls, v: object) -> object:
        return str(v) if isinstance(v, int) else v


class UserSpec(_Model):
    balance: str = "0.00"
    plan: Plan = "free"
    pin: str | None = Field(default=None, pattern=r"^\d{4,6}$")
    contacts: list[ContactSpec] = Field(default_factory=list)
    language: Literal["en", "sw"] | None = None

    @field_validator("balance", mode="before")
    @classmethod
    def _balance(cls, v: object) -> str:
        return _decimal_text(v)

    @field_validator("pin", mode="before")
    @classmethod
    def _pin(cls, v: object) -> object:
        return str(v) if isinstance(v, int) and not isinstance(v, bool) else v


class GatewaySpec(_Model):
    result: Literal["success", "failed", "timeout"] = "success"


class Expect(_Model):
    proposed: dict[str, Any] | None = None
    asked: str | None = None
    committed: dict[str, Any] | None = None
    cancelled: bool | None = None
    rejected: str | None = None
    balance: str | None = None
    say_contains: list[str] | None = None
    language: Literal["en", "sw"] | None = None
    nothing_committed: bool | None = None

    @field_validator("balance", mode="before")
    @classmethod
    def _balance(cls, v: object) -> object:
        return None if v is None else _decimal_text(v)

    @field_validator("say_contains", mode="before")
    @classmethod
    def _says(cls, v: object) -> object:
        if isinstance(v, str):
            return [v]
        if isinstance(v, list):
            return [str(x) for x in v]
        return v


class ToolTurn(_Model):
    """An agent tool's call (`POST /v1/tools/NAME`), as an exported conversation over the tools holds it;
    `confirm_transaction` and `cancel_transaction` act on the proposal open at that turn."""

    name: str = Field(min_length=1, max_length=100)
    parameters: dict[str, Any] = Field(default_factory=dict)


TURN_KINDS = ("user", "tap", "pin", "wait", "tool")


class TurnSpec(_Model):
    user: str | None = None
    tap: Literal["confirm", "cancel"] | None = None
    pin: str | None = None
    wait: float | None = Field(default=None, ge=0, le=86400)
    tool: ToolTurn | None = None
    asr_confidence: float | None = Field(default=None, ge=0, le=1)  # the recogniser's, with `user:`
    expect: Expect | None = None

    @field_validator("user", "pin", mode="before")
    @classmethod
    def _text(cls, v: object) -> object:
        return str(v) if isinstance(v, int | float) and not isinstance(v, bool) else v

    @model_validator(mode="after")
    def _one_kind(self) -> TurnSpec:
        kinds = [k for k in TURN_KINDS if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError("a turn is exactly one of user, tap, pin, wait or tool")
        if self.asr_confidence is not None and self.user is None:
            raise ValueError("asr_confidence goes with a user: turn")
        return self

    @property
    def kind(self) -> str:
        return next(k for k in TURN_KINDS if getattr(self, k) is not None)

    def describe(self) -> str:
        value = getattr(self, self.kind)
        if self.kind == "wait":
            return f"wait {value:g} s"
        if self.kind == "tool":
            return f"tool: {value.name}"
        return f'{self.kind}: "{value}"'


class FinalSpec(_Model):
    balance: str | None = None
    transactions: list[dict[str, Any]] | None = None

    @field_validator("balance", mode="before")
    @classmethod
    def _balance(cls, v: object) -> object:
        return None if v is None else _decimal_text(v)


class Transcript(_Model):
    name: str = Field(min_length=1)
    user: UserSpec = Field(default_factory=UserSpec)
    gateway: GatewaySpec = Field(default_factory=GatewaySpec)
    turns: list[TurnSpec] = Field(min_length=1)
    final: FinalSpec | None = None


def transcript_files(paths: list[str]) -> list[Path]:
    """Files named, and the *.yaml / *.yml files of folders named (sorted), in the order given."""
    out: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            out.extend(sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file()))
        else:
            out.append(path)
    return out


def load_transcript(path: Path) -> Transcript:
    try:
        text = path.read_text("utf-8")
    except FileNotFoundError:
        raise TranscriptError(str(path), "(file)", "no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TranscriptError(str(path), "(file)", f"cannot be read: {exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise TranscriptError(str(path), "(yaml)", f"not valid YAML: {exc}".splitlines()[0]) from None
    if not isinstance(data, dict):
        raise TranscriptError(str(path), "(top level)", "a transcript is a mapping with name, user, turns")
    try:
        return Transcript.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        message = first["msg"]
        if first["type"] == "extra_forbidden":
            message = "unknown field"
        elif first["type"] == "missing":
            message = "missing"
        raise TranscriptError(str(path), where, message) from None


# --- what happened in a turn, and the checks -------------------------------------------------------------


@dataclass
class Observed:
    """What the assistant did in reply to one turn (from a TurnResult, or from a server's events)."""

    say: list[str]
    outcome: str
    language: str
    proposed: dict[str, object] | None = None  # the proposal read back in this turn
    asked: str | None = None
    committed: dict[str, object] | None = None
    cancelled: bool = False
    rejected: str | None = None
    balance: str | None = None
    newly_committed: int = 0  # transactions that reached processing/completed/failed in this turn
    extra: dict[str, object] = field(default_factory=dict)

    def summary(self) -> str:
        said = " ".join(self.say).strip()
        what = {
            "proposed": "read back a proposal",
            "asked": f"asked for {self.asked}" if self.asked else "asked again",
            "committed": "committed a transaction",
            "cancelled": "cancelled",
            "rejected": f"refused ({self.rejected})",
            "answered": "answered",
            "ended": "ended the session" + (f" ({self.rejected})" if self.rejected else ""),
            "ignored": "did nothing",
        }.get(self.outcome, self.outcome)
        return f'the assistant {what}: "{_short(said)}"' if said else f"the assistant {what}"


def _short(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _same(expected: object, actual: object) -> bool:
    if isinstance(expected, bool) or isinstance(actual, bool):
        return expected == actual
    if expected is None:
        return actual in (None, "")
    if isinstance(expected, int | float | Decimal) or _looks_decimal(expected):
        try:
            return Decimal(str(expected)) == Decimal(str(actual))
        except InvalidOperation:
            return False
    return str(expected) == str(actual)


def _looks_decimal(value: object) -> bool:
    if not isinstance(value, str):
        return False
    try:
        Decimal(value)
    except InvalidOperation:
        return False
    return "." in value


def _mismatch(expected: dict[str, Any], actual: dict[str, object]) -> list[str]:
    out = []
    for key, want in expected.items():
        have = actual.get(key)
        if not _same(want, have):
            out.append(f"{key} {have!r} instead of {want!r}" if have not in (None, "") else f"no {key}")
    return out


def _fields(data: dict[str, Any]) -> str:
    return "{" + ", ".join(f"{k}: {v}" for k, v in data.items()) + "}"


def check_turn(expect: Expect | None, seen: Observed) -> str | None:
    """The first expectation that does not hold, in words; None when all hold."""
    if expect is None:
        return None
    if expect.proposed is not None:
        if seen.proposed is None:
            return f"expected a read-back of {_fields(expect.proposed)}, but {seen.summary()}"
        wrong = _mismatch(expect.proposed, seen.proposed)
        if wrong:
            return f"the read-back had {', '.join(wrong)} ({seen.summary()})"
    if expect.asked is not None and seen.asked != expect.asked:
        return f"expected to be asked for {expect.asked}, but {seen.summary()}"
    if expect.committed is not None:
        if seen.committed is None:
            return f"expected {_fields(expect.committed)} to be committed, but {seen.summary()}"
        wrong = _mismatch(expect.committed, seen.committed)
        if wrong:
            return f"the committed transaction had {', '.join(wrong)}"
    if expect.cancelled is not None and seen.cancelled != expect.cancelled:
        if expect.cancelled:
            return f"expected the request to be cancelled, but {seen.summary()}"
        return f"expected nothing to be cancelled, but {seen.summary()}"
    if expect.rejected is not None and seen.rejected != expect.rejected:
        return f"expected a refusal for {expect.rejected}, but {seen.summary()}"
    if expect.balance is not None and not _same(expect.balance, seen.balance):
        told = f"told {seen.balance}" if seen.balance else "told no balance"
        return f"expected to be told the balance {expect.balance}, but {told} ({seen.summary()})"
    if expect.say_contains:
        said = " ".join(seen.say).lower()
        for part in expect.say_contains:
            if part.lower() not in said:
                return f'expected the assistant to say "{part}", but it said: "{_short(" ".join(seen.say))}"'
    if expect.language is not None and seen.language != expect.language:
        return f"expected an answer in {expect.language}, but it answered in {seen.language}: " + (
            f'"{_short(" ".join(seen.say))}"'
        )
    if expect.nothing_committed and (seen.newly_committed or seen.committed is not None):
        return f"expected nothing to be committed, but a transaction was committed ({seen.summary()})"
    return None


def check_final(
    final: FinalSpec | None, balance: Decimal, transactions: list[dict[str, object]]
) -> str | None:
    if final is None:
        return None
    if final.balance is not None and not _same(final.balance, balance):
        return f"expected a final balance of {final.balance}, but it is {balance:.2f}"
    if final.transactions is not None:
        if len(final.transactions) != len(transactions):
            listed = (
                "; ".join(f"{t.get('type')} {t.get('amount')} {t.get('status')}" for t in transactions)
                or "none"
            )
            return (
                f"expected {len(final.transactions)} transaction(s) in the end, but there are "
                f"{len(transactions)} ({listed})"
            )
        for i, (want, have) in enumerate(zip(final.transactions, transactions, strict=True), start=1):
            wrong = _mismatch(want, have)
            if wrong:
                return f"final transaction {i} had {', '.join(wrong)}"
    return None
