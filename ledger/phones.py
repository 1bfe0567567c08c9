"""Kenyan mobile numbers in the one form the ledger stores: 2547XXXXXXXX / 2541XXXXXXXX."""

from __future__ import annotations

import phonenumbers

from ledger.models import LedgerError


def normalize_ke_phone(raw: str) -> str:
    """`0712 345 678`, `+254712345678`, `254712345678` -> `254712345678`; anything else is `invalid_phone`."""
    text = (raw or "").strip()
    if not text or len(text) > 32:
        raise LedgerError("invalid_phone", "a Kenyan mobile number is needed")
    try:
        number = phonenumbers.parse(text, "KE")
    except phonenumbers.NumberParseException as exc:
        raise LedgerError("invalid_phone", f"not a phone number: {text!r}") from exc
    mobile_types = (phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE)
    if (
        number.country_code != 254
        or not phonenumbers.is_valid_number(number)
        or phonenumbers.number_type(number) not in mobile_types
    ):
        raise LedgerError("invalid_phone", f"not a Kenyan mobile number: {text!r}")
    national = str(number.national_number)
    if len(national) != 9 or national[0] not in "17":
        raise LedgerError("invalid_phone", f"not a Kenyan mobile number: {text!r}")
    return "254" + national
