"""What the assistant says: sentences from the per-language data files, amounts as a Kenyan says them.

English amounts are "KES 1,500" (cents only when there are any); Swahili amounts are words, "shilingi elfu
moja mia tano". Phones are read in groups, "0712 345 678". No sentence lives in code: see `data/*.yaml`.
"""

from __future__ import annotations

from decimal import Decimal
from functools import cache
from importlib import resources
from typing import Any, Literal, cast

import yaml

Language = Literal["en", "sw"]
LANGUAGES: tuple[Language, ...] = ("en", "sw")


@cache
def _data(name: str) -> dict[str, Any]:
    text = resources.files("voice_server.dialogue").joinpath("data", f"{name}.yaml").read_text("utf-8")
    return cast(dict[str, Any], yaml.safe_load(text))


def phrases(language: Language) -> dict[str, Any]:
    return _data(language)


def words() -> dict[str, Any]:
    return _data("words")


def line(language: Language, key: str, **params: object) -> str:
    """The sentence `key` ("readback.send_phone") in `language`, with its placeholders filled."""
    node: Any = phrases(language)
    for part in key.split("."):
        node = node[part]
    return str(node).format(**params)


def has_line(language: Language, key: str) -> bool:
    node: Any = phrases(language)
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return isinstance(node, str)


# --- amounts --------------------------------------------------------------------------------------------

_UNITS = ["", "moja", "mbili", "tatu", "nne", "tano", "sita", "saba", "nane", "tisa"]
_TENS = [
    "",
    "kumi",
    "ishirini",
    "thelathini",
    "arobaini",
    "hamsini",
    "sitini",
    "sabini",
    "themanini",
    "tisini",
]


def _sw_below_100(n: int) -> str:
    tens, units = divmod(n, 10)
    if tens == 0:
        return _UNITS[units]
    return _TENS[tens] + (f" na {_UNITS[units]}" if units else "")


def swahili_number(n: int) -> str:
    """0 <= n < 10**9 in Swahili words, multiplier first: 1500 -> 'elfu moja mia tano'."""
    if n == 0:
        return "sifuri"
    millions, rest = divmod(n, 1_000_000)
    laki, rest = divmod(rest, 100_000)
    thousands, rest = divmod(rest, 1000)
    hundreds, below = divmod(rest, 100)
    parts: list[str] = []
    if millions:
        parts.append("milioni " + swahili_number(millions))
    if laki:
        parts.append("laki " + _UNITS[laki])
    if thousands:
        parts.append(("na " if laki else "") + "elfu " + _sw_below_100(thousands))
    if hundreds:
        parts.append("mia " + _UNITS[hundreds])
    if below:
        parts.append(("na " if parts else "") + _sw_below_100(below))
    return " ".join(parts)


def money(language: Language, amount: Decimal) -> str:
    """An amount as it is said: 'KES 1,500' or 'KES 6.66' in English, 'shilingi elfu moja mia tano' in
    Swahili."""
    amount = Decimal(amount).quantize(Decimal("0.01"))
    shillings = int(amount)
    cents = int((amount - shillings) * 100)
    if language == "sw":
        text = "shilingi " + swahili_number(shillings)
        if cents:
            text += " na senti " + swahili_number(cents)
        return text
    return f"KES {shillings:,}" + (f".{cents:02d}" if cents else "")


def plain_amount(amount: Decimal) -> str:
    """JSON form of an amount: two places, no separators ("1500.00")."""
    return f"{Decimal(amount).quantize(Decimal('0.01')):.2f}"


def spoken_phone(phone: str) -> str:
    """254712345678 -> '0712 345 678' (as Kenyans read a number); other text is returned as it is."""
    digits = phone.strip()
    if len(digits) == 12 and digits.startswith("254") and digits.isdigit():
        local = "0" + digits[3:]
        return f"{local[:4]} {local[4:7]} {local[7:]}"
    return digits
