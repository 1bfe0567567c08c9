"""`ongea-pesa mpesa-float`: the float of the payout shortcodes, as M-Pesa's Account Balance reports it.

B2C and B2Pochi are paid from the B2C shortcode's Utility account, B2B from the B2B shortcode's Working
account: an operator tops them up before they run dry. The answer comes to a running server's result URL
(ONGEA_PUBLIC_URL), which records it; this command asks and prints it. Exit 0 with every answer, 1 when one
did not come (or the database is unreachable), 2 with settings that refuse to start.
"""

from __future__ import annotations

import argparse
import json
import sys

import asyncpg

from ledger.daraja.client import DarajaError
from ledger.operator_requests import FloatAnswer, ask_float
from voice_server.loop import run as run_loop
from voice_server.mpesa_routes import MpesaService
from voice_server.runtime import command_settings, database, refused_to_start
from voice_server.settings import Settings


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "mpesa-float", help="the balance of the M-Pesa payout accounts (B2C Utility, B2B Working)"
    )
    p.add_argument(
        "--wait", type=float, default=30.0, help="seconds to wait for M-Pesa's answer (default 30)"
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--database-url", help="PostgreSQL URL (default DATABASE_URL, else the embedded database)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    settings = command_settings(args.database_url)
    if refused_to_start(settings):
        return 2
    try:
        answers = run_loop(_ask(settings, args.wait))
    except (OSError, asyncpg.PostgresError) as exc:
        print(f"ongea-pesa: database unreachable: {exc}", file=sys.stderr)
        return 1
    except DarajaError as exc:
        print(f"ongea-pesa: M-Pesa did not take the question: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps([_as_json(a) for a in answers]))
    else:
        for answer in answers:
            print(_as_line(answer))
    return 0 if all(a.result_code == "0" for a in answers) else 1


async def _ask(settings: Settings, wait: float) -> list[FloatAnswer]:
    async with database(settings, max_size=2) as pool:
        service = MpesaService(pool, settings)
        try:
            client = await service.operator_client()
            return await ask_float(pool, client, service.urls, wait=wait)
        finally:
            await service.stop()


def _as_json(answer: FloatAnswer) -> dict[str, object]:
    return {
        "shortcode": answer.shortcode,
        "pays": answer.role,
        "result_code": answer.result_code,
        "result_desc": answer.result_desc,
        "accounts": {name: str(amount) for name, amount in answer.accounts.items()},
    }


def _as_line(answer: FloatAnswer) -> str:
    head = f"shortcode {answer.shortcode} ({answer.role})"
    if answer.result_code is None:
        return f"{head}: no answer yet (is a server running at ONGEA_PUBLIC_URL to receive it?)"
    if answer.result_code != "0":
        return f"{head}: refused: {answer.result_code} {answer.result_desc}"
    accounts = ", ".join(f"{name} KES {amount:,.2f}" for name, amount in answer.accounts.items())
    return f"{head}: {accounts}"
