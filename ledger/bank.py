"""Bank adapter for `bank_to_mpesa`: the credit awaited from the user's bank.

No bank API is integrated; the simulated adapter approves every credit at once, so the outbox worker settles
the transaction (a wallet credit of amount minus fee, done by `ledger_settle`). A real adapter would start a
pull from the bank here and settle on the bank's notification instead.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol


@dataclass(frozen=True)
class BankResult:
    success: bool
    reference: str | None = None
    error: str | None = None


class BankAdapter(Protocol):
    async def credit(
        self, transaction_id: uuid.UUID, amount: Decimal, bank_code: str, account: str
    ) -> BankResult: ...


class SimulatedBank:
    """Approves every credit; `refuse` lists transaction ids it turns down (for tests)."""

    def __init__(self) -> None:
        self.refuse: set[uuid.UUID] = set()

    async def credit(
        self, transaction_id: uuid.UUID, amount: Decimal, bank_code: str, account: str
    ) -> BankResult:
        if transaction_id in self.refuse:
            return BankResult(False, error="the bank declined the transfer")
        return BankResult(True, reference="BANK" + secrets.token_hex(5).upper())
