"""Bank directory (data/banks.yaml): spoken names -> CBK bank code, and each bank's M-Pesa paybill."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from intents.data_files import load_yaml
from intents.tokens import tokenize_words


@dataclass(frozen=True)
class Bank:
    code: str
    name: str
    paybill: str
    names: tuple[str, ...]


@cache
def banks() -> dict[str, Bank]:
    """All banks by CBK code, loaded once."""
    out: dict[str, Bank] = {}
    for entry in load_yaml("banks.yaml")["banks"]:
        code = str(entry["code"]).zfill(2)
        names = tuple(str(n).strip().lower() for n in entry["names"])
        out[code] = Bank(code=code, name=str(entry["name"]), paybill=str(entry["paybill"]), names=names)
    return out


def bank_phrases() -> dict[str, str]:
    """Every spoken bank name (as the tokenizer will see it) mapped to its bank code."""
    out: dict[str, str] = {}
    for bank in banks().values():
        for name in bank.names:
            words = tokenize_words(name)
            if words:
                out[" ".join(words)] = bank.code
    return out


def bank_paybill(code: str) -> str | None:
    """The M-Pesa paybill number of the bank with this CBK code (for the ledger), or None."""
    bank = banks().get(code.zfill(2) if code.isdigit() else code)
    return bank.paybill if bank else None


def bank_name(code: str) -> str | None:
    bank = banks().get(code)
    return bank.name if bank else None
