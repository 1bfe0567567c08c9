"""The numbers of the gate (who may spend): one row, `ledger_rules`, that the ledger's SQL reads.

The server writes it from its settings at start-up, so the SQL and the settings agree; nothing in Python
decides with these numbers (the ledger answers what a payment needs: `Proposal.needs_pin`, `pin_required`)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import asyncpg


@dataclass(frozen=True)
class GateRules:
    """PIN threshold (a payment above it needs the PIN), the allowance without a PIN (count and total since
    the last payment confirmed with the PIN), and the lockout (wrong PINs in a row, seconds of the first)."""

    pin_threshold: Decimal = Decimal("1000")
    no_pin_count: int = 5
    no_pin_amount: Decimal = Decimal("3000")
    pin_max_attempts: int = 5
    pin_lockout_seconds: int = 900


_COLUMNS = ("pin_threshold", "no_pin_count", "no_pin_amount", "pin_max_attempts", "pin_lockout_seconds")


async def write_rules(pool: asyncpg.Pool | asyncpg.Connection, rules: GateRules) -> None:
    """Makes `rules` the ledger's (a no-op when they already are)."""
    await pool.execute(
        """UPDATE ledger_rules
           SET pin_threshold = $1, no_pin_count = $2, no_pin_amount = $3, pin_max_attempts = $4,
               pin_lockout_seconds = $5, updated_at = now()
           WHERE (pin_threshold, no_pin_count, no_pin_amount, pin_max_attempts, pin_lockout_seconds)
                 IS DISTINCT FROM ($1::numeric, $2::int, $3::numeric, $4::int, $5::int)""",
        *(getattr(rules, c) for c in _COLUMNS),
    )


async def read_rules(pool: asyncpg.Pool | asyncpg.Connection) -> GateRules:
    row = await pool.fetchrow(f"SELECT {', '.join(_COLUMNS)} FROM ledger_rules")
    assert row is not None  # the migration writes the one row; nothing deletes it
    return GateRules(**dict(row))
