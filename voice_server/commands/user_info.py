"""`ongea-pesa user show PHONE_OR_ID` and `ongea-pesa user list`: what the app shows a user, from the shell.

`show` reads through the same row-level-security path and the same queries as `GET /v1/me` and
`GET /v1/transactions`, so the shell and the app cannot disagree."""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from typing import Any

import asyncpg

from ledger.models import LedgerError
from ledger.phones import normalize_ke_phone
from ledger.reads import as_user
from voice_server.app_api import queries
from voice_server.app_api.models import Profile, Transaction
from voice_server.loop import run as run_loop
from voice_server.runtime import command_settings, database
from voice_server.settings import Settings

_DB_HELP = "PostgreSQL URL (default: DATABASE_URL, else the embedded database)"


def register(user_sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    show = user_sub.add_parser("show", help="a user's balance, plan, usage and last transactions")
    show.add_argument("who", metavar="PHONE_OR_ID", help="phone number (any usual form) or user id")
    show.add_argument(
        "--transactions", type=int, default=10, help="how many recent transactions (default 10)"
    )
    show.add_argument("--json", action="store_true", help="print one JSON object")
    show.add_argument("--database-url", help=_DB_HELP)
    show.set_defaults(func=run_show)

    listing = user_sub.add_parser("list", help="all users, newest first, with balance and plan")
    listing.add_argument("--limit", type=int, default=100, help="at most this many users (default 100)")
    listing.add_argument("--json", action="store_true", help="print JSON lines, one user each")
    listing.add_argument("--database-url", help=_DB_HELP)
    listing.set_defaults(func=run_list)


async def resolve_user(pool: asyncpg.Pool, who: str) -> uuid.UUID | None:
    """A user by id or by phone number (any usual form); None when there is none. A `who` that is neither
    raises LedgerError (from the phone normaliser)."""
    try:
        return (
            uuid.UUID(who)
            if await pool.fetchval("SELECT 1 FROM profiles WHERE id = $1", uuid.UUID(who))
            else None
        )
    except ValueError:
        pass
    found: uuid.UUID | None = await pool.fetchval(
        "SELECT id FROM profiles WHERE phone_number = $1", normalize_ke_phone(who)
    )
    return found


async def _show(settings: Settings, who: str, n: int) -> tuple[Profile, list[Transaction]] | None:
    async with database(settings, max_size=2) as pool:
        user_id = await resolve_user(pool, who)
        if user_id is None:
            return None
        async with as_user(pool, user_id) as conn:
            profile = await queries.profile(conn)
            transactions, _ = await queries.transactions_page(conn, limit=n)
        assert profile is not None
        return profile, transactions


def run_show(args: argparse.Namespace) -> int:
    if not 1 <= args.transactions <= 100:
        print("user show: --transactions is from 1 to 100", file=sys.stderr)
        return 2
    settings = command_settings(args.database_url)
    try:
        found = run_loop(_show(settings, args.who, args.transactions))
    except LedgerError:
        print(f"user show: {args.who!r} is neither a user id nor a Kenyan mobile number", file=sys.stderr)
        return 2
    if found is None:
        print(f"user show: no user {args.who}", file=sys.stderr)
        return 2
    profile, transactions = found
    if args.json:
        print(
            json.dumps(
                {
                    "profile": profile.model_dump(mode="json"),
                    "transactions": [t.model_dump(mode="json") for t in transactions],
                }
            )
        )
        return 0
    plan, usage = profile.plan, profile.usage
    limit = "unlimited" if usage.limit is None else f"{usage.limit}"
    fee = float(plan.transaction_fee_percentage) * 100
    print(f"user:        {profile.id}")
    print(f"phone:       {profile.phone} (M-Pesa {profile.mpesa_number})")
    print(
        f"balance:     KES {profile.wallet_balance} "
        f"(available {profile.available_balance}, held {profile.held_balance})"
    )
    print(f"plan:        {plan.plan} ({plan.status}, fee {fee:g}%)")
    print(f"usage:       {usage.transactions} of {limit} payments in {usage.month}")
    pin = "locked until " + str(profile.pin_locked_until) if profile.pin_locked_until else profile.pin_set
    print(f"pin set:     {pin}")
    auto = (
        f"on: KES {profile.mpesa_auto_topup_amount} when below {profile.mpesa_auto_topup_threshold}"
        if profile.mpesa_auto_topup
        else "off"
    )
    print(f"auto top-up: {auto}")
    print(f"last {len(transactions)} transactions:" if transactions else "no transactions yet")
    for t in transactions:
        to = t.phone or t.till or t.paybill or t.agent or t.bank_code
        print(f"  {t.created_at:%Y-%m-%d %H:%M}  {t.type:<15} {t.amount:>10}  {t.status:<10} {to}  {t.id}")
    return 0


async def _list(settings: Settings, limit: int) -> list[dict[str, Any]]:
    async with database(settings, max_size=2) as pool:
        rows = await pool.fetch(
            """SELECT p.id, p.phone_number, p.wallet_balance, p.held_balance, p.created_at,
                      coalesce((SELECT s.plan_type FROM subscriptions s
                                WHERE s.user_id = p.id AND s.status = 'active'
                                  AND now() >= s.current_period_start AND now() < s.current_period_end
                                ORDER BY s.current_period_start DESC LIMIT 1), 'free') AS plan
               FROM profiles p ORDER BY p.created_at DESC, p.id LIMIT $1""",
            limit,
        )
        return [dict(r) for r in rows]


def run_list(args: argparse.Namespace) -> int:
    if not 1 <= args.limit <= 100000:
        print("user list: --limit is from 1 to 100000", file=sys.stderr)
        return 2
    users = run_loop(_list(command_settings(args.database_url), args.limit))
    if not args.json:
        print(f"{'USER ID':<36}  {'PHONE':<12}  {'BALANCE':>16}  PLAN")
    for u in users:
        if args.json:
            print(
                json.dumps(
                    {
                        "user_id": str(u["id"]),
                        "phone": u["phone_number"],
                        "balance": f"{u['wallet_balance']:.2f}",
                        "available": f"{u['wallet_balance'] - u['held_balance']:.2f}",
                        "plan": u["plan"],
                        "created_at": u["created_at"].isoformat() if u["created_at"] else None,
                    }
                )
            )
        else:
            print(f"{u['id']}  {u['phone_number']}  KES {u['wallet_balance']:>12.2f}  {u['plan']:<8}")
    if not args.json:
        print(f"{len(users)} user(s)", file=sys.stderr)
    return 0
