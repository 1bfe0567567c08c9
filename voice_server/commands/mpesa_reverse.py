"""`ongea-pesa mpesa-reverse TRANSACTION_ID --reason TEXT --by NAME`: reverse a payout sent to the wrong
number, at a person's request.

Only a completed payout with an M-Pesa receipt, once. M-Pesa takes the money back from the recipient (if
it still can); when its result says so, the sender's wallet gets the payout's amount back (not the fee:
the payout was made), once, backed by the reversal's receipt (ledger invariant 6). The result comes to a
running server (ONGEA_PUBLIC_URL). Exit 0 reversed, 1 refused, failed or no answer yet, 2 bad settings.
"""

from __future__ import annotations

import argparse
import sys
import uuid

import asyncpg

from ledger.daraja.client import DarajaError
from ledger.operator_requests import ReversalAnswer, reverse_payout
from voice_server.loop import run as run_loop
from voice_server.mpesa_routes import MpesaService
from voice_server.runtime import command_settings, database, refused_to_start
from voice_server.settings import Settings

LEDGER_REFUSAL = "OPL01"  # ledger_fail's SQLSTATE


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("mpesa-reverse", help="reverse a payout sent to the wrong number")
    p.add_argument(
        "transaction", metavar="TRANSACTION_ID", type=uuid.UUID, help="the payout's transaction id"
    )
    p.add_argument("--reason", required=True, help="why (kept with the reversal)")
    p.add_argument("--by", required=True, help="who asks for it (kept with the reversal)")
    p.add_argument(
        "--wait", type=float, default=60.0, help="seconds to wait for M-Pesa's result (default 60)"
    )
    p.add_argument("--database-url", help="PostgreSQL URL (default DATABASE_URL, else the embedded database)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    settings = command_settings(args.database_url)
    if refused_to_start(settings):
        return 2
    try:
        answer = run_loop(_reverse(settings, args.transaction, args.reason, args.by, args.wait))
    except asyncpg.PostgresError as exc:
        if exc.sqlstate == LEDGER_REFUSAL:  # the ledger refused it (not a completed payout, asked already)
            print(f"ongea-pesa: not reversed: {exc}: {exc.detail}", file=sys.stderr)
        else:
            print(f"ongea-pesa: database error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"ongea-pesa: database unreachable: {exc}", file=sys.stderr)
        return 1
    except DarajaError as exc:
        print(f"ongea-pesa: M-Pesa did not take the reversal (ask again): {exc}", file=sys.stderr)
        return 1
    print(f"reversal {answer.reversal_id}: {answer.status} {answer.detail}".rstrip())
    return 0 if answer.status == "completed" else 1


async def _reverse(settings: Settings, tx: uuid.UUID, reason: str, by: str, wait: float) -> ReversalAnswer:
    async with database(settings, max_size=2) as pool:
        service = MpesaService(pool, settings)
        try:
            client = await service.operator_client()
            return await reverse_payout(
                pool, client, service.urls, tx, reason=reason, requested_by=by, wait=wait
            )
        finally:
            await service.stop()
