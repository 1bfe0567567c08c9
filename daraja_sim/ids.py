"""Nairobi time and the ids Daraja hands out (receipts, ConversationIDs, its OriginatorConversationIDs)."""

from __future__ import annotations

import datetime as dt
import secrets
import string
from zoneinfo import ZoneInfo

NAIROBI = ZoneInfo("Africa/Nairobi")


def nairobi_now() -> dt.datetime:
    return dt.datetime.now(NAIROBI)


def stamp(at: dt.datetime) -> str:
    """Daraja's `YYYYMMDDHHmmss`, Nairobi time."""
    return f"{at.astimezone(NAIROBI):%Y%m%d%H%M%S}"


def receipt() -> str:
    alphabet = string.ascii_uppercase + string.digits
    return "S" + "".join(secrets.choice(alphabet) for _ in range(9))


def daraja_originator() -> str:
    """An OriginatorConversationID as Daraja assigns one (e.g. `16740-34861180-1`)."""
    return f"{secrets.randbelow(90000) + 10000}-{secrets.randbelow(9 * 10**7) + 10**7}-1"


def conversation_id() -> str:
    return f"AG_{nairobi_now():%Y%m%d}_{secrets.token_hex(10)}"
