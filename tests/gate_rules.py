"""Helpers for tests about something else than who may spend: the gate's numbers (`ledger_rules`) set for one
test and put back after it (the tests of one run share their database but run one at a time), and a
confirmation given as a person gives it (the PIN typed when the ledger asks for it)."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal

import asyncpg

from ledger.models import ConfirmResult, LedgerError
from ledger.rules import GateRules, read_rules, write_rules
from ledger.service import Ledger

# No PIN asked below the most one transaction may move, and an allowance no test reaches.
NO_GATE = {"pin_threshold": Decimal(250_000), "no_pin_count": 10**9, "no_pin_amount": Decimal(10**9)}


@asynccontextmanager
async def gate_rules(pool: asyncpg.Pool, **changes: object) -> AsyncIterator[GateRules]:
    before = await read_rules(pool)
    rules = dataclasses.replace(before, **changes)  # type: ignore[arg-type]
    await write_rules(pool, rules)
    try:
        yield rules
    finally:
        await write_rules(pool, before)


async def confirm_as_a_person(
    ledger: Ledger,
    transaction_id: uuid.UUID,
    user_id: uuid.UUID,
    version: int,
    *,
    pin: str,
    voice: bool = True,
) -> ConfirmResult:
    """A confirmation as the person gives it: the yes, then the PIN on the keypad when the ledger asks for it
    (`pin_required`): for tests that pay many times from one wallet and are about something else."""
    try:
        return await ledger.confirm(transaction_id, user_id, version, voice_verified=voice)
    except LedgerError as exc:
        if exc.code != "pin_required":
            raise
    return await ledger.confirm(transaction_id, user_id, version, voice_verified=voice, pin=pin)
