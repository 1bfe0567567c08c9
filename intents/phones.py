"""Kenyan mobile numbers, checked and normalised by the `phonenumbers` library."""

from __future__ import annotations

from functools import lru_cache

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberType

_MOBILE = (PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE)


def looks_like_phone(digits: str, plus: bool = False, *, recipient: bool = False) -> bool:
    """Shape only: is this digit string meant as a phone number (even a wrong one)?

    Nine digits without the leading 0 ("712345678") count only where a recipient is expected.
    """
    if not digits.isdigit():
        return False
    if plus or (len(digits) == 12 and digits.startswith("254")):
        return True
    if digits.startswith("0") and len(digits) > 1:
        return True  # amounts never start with 0, so a 0-led string is a (maybe bad) phone
    return recipient and len(digits) == 9 and digits[0] in "17"


@lru_cache(maxsize=4096)
def normalise_phone(raw: str) -> str | None:
    """'0712 345 678', '+254712345678', '712345678' ... -> '254712345678'; None if not a Kenyan mobile."""
    digits = "".join(c for c in raw if c.isdigit())
    if not digits:
        return None
    if len(digits) == 9 and digits[0] in "17":
        digits = "0" + digits
    candidate = "+" + digits if digits.startswith("254") else digits
    try:
        number = phonenumbers.parse(candidate, "KE")
    except NumberParseException:
        return None
    if number.country_code != 254 or not phonenumbers.is_valid_number(number):
        return None
    if phonenumbers.number_type(number) not in _MOBILE:
        return None
    out = f"254{number.national_number}"
    return out if len(out) == 12 and out[3] in "17" else None
