"""`GET/POST/DELETE /v1/payment-methods`: M-Pesa numbers, bank accounts (bank from the directory) and cards.

Cards are saved with the payment provider by the app; we keep its token, the last four digits and the brand.
A request that carries anything looking like a card number is refused before it is stored or logged, so
card data never enters this system (and its PCI DSS scope)."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import asyncpg
from aiohttp import web

from intents.banks import banks
from ledger.models import LedgerError
from ledger.phones import normalize_ke_phone
from voice_server.app_api import queries
from voice_server.app_api.common import answer, parse_json_object, path_id, read_body, user_db, validate
from voice_server.app_api.models import (
    BankMethodCreate,
    CardMethodCreate,
    MpesaMethodCreate,
    PaymentMethodCreate,
    PaymentMethodList,
)
from voice_server.auth import request_user
from voice_server.http_errors import ApiError

# Digits, possibly grouped as a card is printed ("4111 1111 1111 1111") or by any other single mark that
# is not a letter or digit ("tok_4111_1111_1111_1111" hid a card number in a token).
_DIGIT_RUN = re.compile(r"\d(?:[^0-9A-Za-z]?\d)+")
_ACCOUNT = re.compile(r"^[A-Za-z0-9]{1,20}$")
MAX_METHODS = 20


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def looks_like_card_number(text: str) -> bool:
    """12 to 19 digits that pass the Luhn check and start as payment cards do (ISO/IEC 7812 major industry
    identifiers 2 to 6: Mastercard, Amex, Visa, Discover, UnionPay...). A Kenyan mobile number is not one."""
    for match in _DIGIT_RUN.finditer(text):
        digits = re.sub(r"\D", "", match.group())
        if 12 <= len(digits) <= 19 and digits[0] in "23456" and luhn_ok(digits):
            try:
                normalize_ke_phone(digits)
            except LedgerError:
                return True
    return False


def carries_card_number(value: Any) -> bool:
    """Any key or value, at any depth, that looks like a card number (a loop, not recursion: a body nested
    hundreds deep is still JSON, and must be a 400, not a RecursionError)."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
        elif isinstance(item, str | int | Decimal) and not isinstance(item, bool):
            if looks_like_card_number(str(item)):
                return True
    return False


async def list_methods(request: web.Request) -> web.Response:
    async with user_db(request) as conn:
        return answer(PaymentMethodList(items=await queries.payment_methods(conn)))


def _columns(method: MpesaMethodCreate | BankMethodCreate | CardMethodCreate) -> dict[str, Any]:
    if isinstance(method, MpesaMethodCreate):
        try:
            return {"method_type": "mpesa", "mpesa_number": normalize_ke_phone(method.phone)}
        except LedgerError as exc:
            raise ApiError(400, "invalid_phone", exc.message) from None
    if isinstance(method, BankMethodCreate):
        bank = banks().get(method.bank_code.strip().zfill(2)) if method.bank_code.strip().isdigit() else None
        if bank is None:
            raise ApiError(400, "unknown_bank", "bank_code is not a bank of the directory (e.g. 68 Equity)")
        account = method.account_number.replace(" ", "")
        if not _ACCOUNT.match(account):
            raise ApiError(400, "invalid_account", "an account number is 1 to 20 letters and digits")
        return {
            "method_type": "bank",
            "bank_code": bank.code,
            "bank_name": bank.name,
            "bank_account_number": account,
        }
    return {
        "method_type": "card",
        "card_token": method.token,
        "card_last4": method.last4,
        "card_brand": method.brand,
    }


async def add_method(request: web.Request) -> web.Response:
    user_id = request_user(request)
    body = parse_json_object(await read_body(request))
    if carries_card_number(body):
        raise ApiError(
            400,
            "card_number_refused",
            "never send a card number: save the card with the payment provider and send its token, "
            "last4 and brand",
        )
    method = validate(PaymentMethodCreate, body).root
    columns = _columns(method)
    async with user_db(request, write=True) as conn:
        # One change of the user's methods at a time (two "make this the default" at once both succeed).
        await conn.execute("SELECT id FROM profiles FOR UPDATE")
        count, has_default = await conn.fetchrow(
            "SELECT count(*), coalesce(bool_or(is_default), false) FROM payment_methods WHERE is_active"
        )
        if count >= MAX_METHODS:
            raise ApiError(
                409, "too_many_methods", f"at most {MAX_METHODS} payment methods: delete one first"
            )
        make_default = method.is_default or not has_default  # the first method saved is the default
        if make_default and has_default:
            await conn.execute("UPDATE payment_methods SET is_default = false WHERE is_default")
        columns["is_default"] = make_default
        names = ", ".join(["user_id", *columns])
        slots = ", ".join(f"${i}" for i in range(1, len(columns) + 2))
        try:
            row = await conn.fetchrow(
                f"INSERT INTO payment_methods ({names}) VALUES ({slots}) "
                f"RETURNING {queries.PAYMENT_METHOD_COLUMNS}",
                user_id,
                *columns.values(),
            )
        except asyncpg.UniqueViolationError as exc:
            if "one_default" in (exc.constraint_name or ""):
                raise ApiError(
                    409, "conflict", "another default was set at the same time: try again"
                ) from None
            raise ApiError(409, "method_exists", "this payment method is already saved") from None
    assert row is not None
    return answer(queries.payment_method(row), 201)


async def delete_method(request: web.Request) -> web.Response:
    method_id = path_id(request)
    async with user_db(request, write=True) as conn:
        status = await conn.execute("DELETE FROM payment_methods WHERE id = $1", method_id)
    if status != "DELETE 1":
        raise ApiError(404, "not_found", "no such payment method")
    return web.Response(status=204)


def setup(app: web.Application) -> None:
    app.router.add_get("/v1/payment-methods", list_methods)
    app.router.add_post("/v1/payment-methods", add_method)
    app.router.add_delete("/v1/payment-methods/{id}", delete_method)
