"""`ongea-pesa user add ...` and `ongea-pesa token PHONE_OR_ID`: development users and their tokens.

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
from ledger.pins import validate_pin, weak_pin_reason
from ledger.users import PLANS, NewUser, create_user
from voice_server.auth import mint_user_token
from voice_server.commands import user_info
from voice_server.loop import run as run_loop
from voice_server.runtime import command_settings, database
from voice_server.settings import Settings

_DB_HELP = "PostgreSQL URL (default: DATABASE_URL, else the embedded database)"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    user = sub.add_parser("user", help="manage users (development)")
    user_sub = user.add_subparsers(dest="user_command", required=True, metavar="ACTION")
    add = user_sub.add_parser("add", help="create a user and print its id and a user token")
    add.add_argument("--phone", required=True, help="Kenyan mobile number, e.g. 0712345678")
    add.add_argument("--balance", default="0", help="opening wallet balance in KES (default 0)")
    add.add_argument("--plan", default="free", choices=PLANS, help="subscription plan (default free)")
    add.add_argument(
        "--pin",
        help="4-6 digit PIN, not one digit repeated, a run or a block repeated (stored as an argon2 hash)",
    )
    add.add_argument("--json", action="store_true", help="print one JSON object")
    add.add_argument("--database-url", help=_DB_HELP)
    add.set_defaults(func=run_add)
    user_info.register(user_sub)

    token = sub.add_parser("token", help="print a fresh user token for an existing user")
    token.add_argument("who", metavar="PHONE_OR_ID", help="phone number (any usual form) or user id")
    token.add_argument("--database-url", help=_DB_HELP)
    token.set_defaults(func=run_token)


def _token(settings: Settings, user_id: uuid.UUID) -> str:
    return mint_user_token(settings.user_jwt_secret(), user_id, ttl_seconds=settings.user_token_ttl_seconds)


async def _add(settings: Settings, args: argparse.Namespace) -> NewUser:
    async with database(settings, max_size=2) as pool:
        return await create_user(pool, args.phone, balance=args.balance, plan=args.plan, pin=args.pin)


def pin_refusal(pin: str) -> str | None:
    """Why `--pin` is refused, by the same rule as `PUT /v1/me/pin` (with its error codes); None if fine."""
    try:
        validate_pin(pin)
    except LedgerError as exc:
        return f"{exc.message} ({exc.code})"
    reason = weak_pin_reason(pin)
    return f"{reason} (weak_pin)" if reason else None


def run_add(args: argparse.Namespace) -> int:
    if args.pin is not None and (refusal := pin_refusal(args.pin)):
        print(f"user add: --pin: {refusal}", file=sys.stderr)
        return 2
    settings = command_settings(args.database_url)
    try:
        if Decimal(args.balance) != 0 and settings.daraja_environment == "production":
            # An opening balance is money no one paid in: in production it comes through M-Pesa (a top-up).
            print(
                "user add: --balance is for development; with DARAJA_ENVIRONMENT=production a wallet starts "
                "at 0 and is topped up through M-Pesa",
                file=sys.stderr,
            )
            return 2
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


async def _find(settings: Settings, who: str) -> uuid.UUID | None:
    async with database(settings, max_size=2) as pool:
        return await user_info.resolve_user(pool, who)


def run_token(args: argparse.Namespace) -> int:
    """A user named as `user show` names one: by phone number or by id."""
    settings = command_settings(args.database_url)
    try:
        user_id = run_loop(_find(settings, args.who))
    except LedgerError:
        print(f"token: {args.who!r} is neither a user id nor a Kenyan mobile number", file=sys.stderr)
        return 2
    if user_id is None:
        print(f"token: no user {args.who}", file=sys.stderr)
        return 2
    print(_token(settings, user_id))
    return 0
