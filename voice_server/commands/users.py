"""`ongea-pesa user add ...` and `ongea-pesa token USER_ID`: development users and their tokens.

Exit status: 0 done, 2 refused input (bad phone, PIN, plan, duplicate phone, unknown user),
1 database unreachable or refusing (one line, from `voice_server.cli`).
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from decimal import Decimal

from ledger.models import LedgerError
from ledger.users import PLANS, NewUser, create_user, user_exists
from voice_server.auth import mint_user_token
from voice_server.commands import user_info
from voice_server.loop import run as run_loop
from voice_server.runtime import command_settings, open_database
from voice_server.settings import Settings

_DB_HELP = "PostgreSQL URL (default: DATABASE_URL, else the embedded database)"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    user = sub.add_parser("user", help="manage users (development)")
    user_sub = user.add_subparsers(dest="user_command", required=True, metavar="ACTION")
    add = user_sub.add_parser("add", help="create a user and print its id and a user token")
    add.add_argument("--phone", required=True, help="Kenyan mobile number, e.g. 0712345678")
    add.add_argument("--balance", default="0", help="opening wallet balance in KES (default 0)")
    add.add_argument("--plan", default="free", choices=PLANS, help="subscription plan (default free)")
    add.add_argument("--pin", help="4-6 digit PIN (stored as an argon2 hash)")
    add.add_argument("--json", action="store_true", help="print one JSON object")
    add.add_argument("--database-url", help=_DB_HELP)
    add.set_defaults(func=run_add)
    user_info.register(user_sub)

    token = sub.add_parser("token", help="print a fresh user token for an existing user")
    token.add_argument("user_id", help="the user's id (auth.users.id)")
    token.add_argument("--database-url", help=_DB_HELP)
    token.set_defaults(func=run_token)


def _token(settings: Settings, user_id: uuid.UUID) -> str:
    return mint_user_token(settings.user_jwt_secret(), user_id, ttl_seconds=settings.user_token_ttl_seconds)


async def _add(settings: Settings, args: argparse.Namespace) -> NewUser:
    pool = await open_database(settings, max_size=2)
    try:
        return await create_user(pool, args.phone, balance=args.balance, plan=args.plan, pin=args.pin)
    finally:
        await pool.close()


def run_add(args: argparse.Namespace) -> int:
    settings = command_settings(args.database_url)
    try:
        Decimal(args.balance)
        user = run_loop(_add(settings, args))
    except LedgerError as exc:
        print(f"user add: {exc.message} ({exc.code})", file=sys.stderr)
        return 2
    except ArithmeticError:
        print("user add: --balance must be an amount like 1500 or 1500.50", file=sys.stderr)
        return 2
    token = _token(settings, user.user_id)
    if args.json:
        print(
            json.dumps(
                {
                    "user_id": str(user.user_id),
                    "token": token,
                    "phone": user.phone,
                    "balance": str(user.balance),
                }
            )
        )
    else:
        print(f"user_id: {user.user_id}")
        print(f"phone:   {user.phone}")
        print(f"balance: {user.balance}")
        print(f"plan:    {user.plan}")
        print(f"token:   {token}")
    return 0


async def _exists(settings: Settings, user_id: uuid.UUID) -> bool:
    pool = await open_database(settings, max_size=2)
    try:
        return await user_exists(pool, user_id)
    finally:
        await pool.close()


def run_token(args: argparse.Namespace) -> int:
    settings = command_settings(args.database_url)
    try:
        user_id = uuid.UUID(args.user_id)
    except ValueError:
        print(f"token: not a user id: {args.user_id!r}", file=sys.stderr)
        return 2
    found = run_loop(_exists(settings, user_id))
    if not found:
        print(f"token: no user {user_id}", file=sys.stderr)
        return 2
    print(_token(settings, user_id))
    return 0
