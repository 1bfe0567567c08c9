"""`/v1/contacts`: the people voice payments are matched against ("tuma elfu moja kwa Mama"), one per
number, and the import of a phone's address book."""

from __future__ import annotations

from typing import Any, Literal

import asyncpg
import phonenumbers
from aiohttp import web

from ledger.models import LedgerError
from ledger.phones import normalize_ke_phone
from voice_server.app_api import queries
from voice_server.app_api.common import answer, path_id, read_model, user_db
from voice_server.app_api.models import (
    ContactCreate,
    ContactImport,
    ContactImportResult,
    ContactList,
    ContactPatch,
    ImportSkip,
    clean_text,
)
from voice_server.auth import request_user
from voice_server.bodies import allow_larger_body
from voice_server.http_errors import ApiError

PhoneProblem = Literal["invalid_phone", "foreign_number"]
IMPORT_MAX_BYTES = 2 * 1024 * 1024  # an address book of a few thousand entries
MAX_CONTACTS = 10_000  # per user: imports cannot grow one user's rows without end
# Additions of one user counted and written one at a time (the profile's row lock), or parallel imports
# each count the same total and together pass the limit.
_ONE_AT_A_TIME = "SELECT id FROM profiles FOR UPDATE"


def classify_phone(raw: str) -> tuple[str | None, PhoneProblem | None, str]:
    """(2547XXXXXXXX, None, "") for a Kenyan mobile number in any usual form; otherwise why not."""
    try:
        parsed = phonenumbers.parse(raw.strip(), "KE")
    except phonenumbers.NumberParseException:
        return None, "invalid_phone", "not a phone number"
    if parsed.country_code != 254:
        return None, "foreign_number", "not a Kenyan number: M-Pesa pays Kenyan numbers only"
    try:
        return normalize_ke_phone(raw), None, ""
    except LedgerError:
        return None, "invalid_phone", "not a Kenyan mobile number"


def _phone(raw: str) -> str:
    number, problem, message = classify_phone(raw)
    if number is None:
        raise ApiError(400, problem or "invalid_phone", message)
    return number


def _exists() -> ApiError:
    return ApiError(409, "contact_exists", "a contact with this number is already saved")


async def list_contacts(request: web.Request) -> web.Response:
    async with user_db(request) as conn:
        return answer(ContactList(items=await queries.contacts(conn)))


async def create_contact(request: web.Request) -> web.Response:
    user_id = request_user(request)
    body = await read_model(request, ContactCreate)
    phone = _phone(body.phone)
    async with user_db(request, write=True) as conn:
        await conn.execute(_ONE_AT_A_TIME)
        if await conn.fetchval("SELECT count(*) FROM contacts") >= MAX_CONTACTS:
            raise ApiError(409, "too_many_contacts", f"at most {MAX_CONTACTS:,} contacts: delete some first")
        try:
            row = await conn.fetchrow(
                f"""INSERT INTO contacts (user_id, name, phone_number, nickname, relationship, default_amount,
                                          favorite)
                    VALUES ($1, $2, $3, $4, $5, $6, $7)
                    ON CONFLICT (user_id, phone_number) DO NOTHING
                    RETURNING {queries.CONTACT_COLUMNS}""",
                user_id,
                body.name,
                phone,
                body.nickname,
                body.relationship,
                body.default_amount,
                body.favorite,
            )
        except asyncpg.UniqueViolationError:
            raise _exists() from None
        if row is None:
            raise _exists()
    return answer(queries.contact(row), 201)


async def get_contact(request: web.Request) -> web.Response:
    contact_id = path_id(request)
    async with user_db(request) as conn:
        row = await conn.fetchrow(f"SELECT {queries.CONTACT_COLUMNS} FROM contacts WHERE id = $1", contact_id)
    if row is None:
        raise ApiError(404, "not_found", "no such contact")
    return answer(queries.contact(row))


async def patch_contact(request: web.Request) -> web.Response:
    request_user(request)
    contact_id = path_id(request)
    patch = await read_model(request, ContactPatch)
    fields = patch.model_fields_set
    changes: dict[str, Any] = {}
    for name in ("name", "favorite"):
        if name in fields and getattr(patch, name) is not None:
            changes[name] = getattr(patch, name)
    for name in ("nickname", "relationship", "default_amount"):  # null clears these
        if name in fields:
            changes[name] = getattr(patch, name)
    if "phone" in fields and patch.phone is not None:
        changes["phone_number"] = _phone(patch.phone)
    async with user_db(request, write=True) as conn:
        if changes:
            sets = ", ".join(f"{name} = ${i}" for i, name in enumerate(changes, start=2))
            try:
                row = await conn.fetchrow(
                    f"UPDATE contacts SET {sets} WHERE id = $1 RETURNING {queries.CONTACT_COLUMNS}",
                    contact_id,
                    *changes.values(),
                )
            except asyncpg.UniqueViolationError:
                raise _exists() from None
        else:
            row = await conn.fetchrow(
                f"SELECT {queries.CONTACT_COLUMNS} FROM contacts WHERE id = $1", contact_id
            )
    if row is None:
        raise ApiError(404, "not_found", "no such contact")
    return answer(queries.contact(row))


async def delete_contact(request: web.Request) -> web.Response:
    contact_id = path_id(request)
    async with user_db(request, write=True) as conn:
        status = await conn.execute("DELETE FROM contacts WHERE id = $1", contact_id)
    if status != "DELETE 1":
        raise ApiError(404, "not_found", "no such contact")
    return web.Response(status=204)


async def import_contacts(request: web.Request) -> web.Response:
    """Adds every new Kenyan mobile number of an address book in one statement; the rest are listed with
    the reason they were skipped (nothing already saved is changed)."""
    user_id = request_user(request)
    body = await read_model(request, ContactImport)
    skipped: list[ImportSkip] = []
    wanted: dict[str, tuple[int, str, str | None, str | None]] = {}

    def skip(i: int, name: str, phone: str, reason: Any, message: str) -> None:
        skipped.append(ImportSkip(index=i, name=name[:100], phone=phone[:40], reason=reason, message=message))

    for i, entry in enumerate(body.contacts):
        try:
            name = clean_text(entry.name, "name", 100, required=True)
            nickname = clean_text(entry.nickname, "nickname", 100)
            relationship = clean_text(entry.relationship, "relationship", 50)
        except ValueError as exc:
            skip(i, entry.name, entry.phone, "invalid_name", str(exc))
            continue
        assert name is not None
        number, problem, message = classify_phone(entry.phone)
        if number is None:
            skip(i, name, entry.phone, problem, message)
        elif number in wanted:
            skip(i, name, entry.phone, "duplicate", f"the same number as entry {wanted[number][0]}")
        else:
            wanted[number] = (i, name, nickname, relationship)
    async with user_db(request, write=True) as conn:
        await conn.execute(_ONE_AT_A_TIME)
        saved = await conn.fetchval("SELECT count(*) FROM contacts")
        if saved + len(wanted) > MAX_CONTACTS:
            raise ApiError(
                400,
                "too_many_contacts",
                f"this import would make {saved + len(wanted):,} contacts; at most {MAX_CONTACTS:,}",
            )
        rows = await conn.fetch(
            f"""INSERT INTO contacts (user_id, name, phone_number, nickname, relationship)
                SELECT $1, n, p, k, r
                FROM unnest($2::text[], $3::text[], $4::text[], $5::text[]) AS u(n, p, k, r)
                ON CONFLICT (user_id, phone_number) DO NOTHING
                RETURNING {queries.CONTACT_COLUMNS}""",
            user_id,
            [w[1] for w in wanted.values()],
            list(wanted),
            [w[2] for w in wanted.values()],
            [w[3] for w in wanted.values()],
        )
    added = {r["phone_number"] for r in rows}
    for number, (i, name, _, _) in wanted.items():
        if number not in added:
            skip(i, name, number, "already_saved", "a contact with this number is already saved")
    skipped.sort(key=lambda s: s.index)
    by_index = {number: w[0] for number, w in wanted.items()}
    imported = sorted((queries.contact(r) for r in rows), key=lambda c: by_index[c.phone])
    return answer(ContactImportResult(imported=imported, skipped=skipped), 201)


def setup(app: web.Application) -> None:
    app.router.add_get("/v1/contacts", list_contacts)
    app.router.add_post("/v1/contacts", create_contact)
    # Google-style custom method: a literal colon in the path (aiohttp matches it as plain text).
    app.router.add_post("/v1/contacts:import", import_contacts)
    allow_larger_body(app, "/v1/contacts:import", IMPORT_MAX_BYTES)
    app.router.add_get("/v1/contacts/{id}", get_contact)
    app.router.add_patch("/v1/contacts/{id}", patch_contact)
    app.router.add_delete("/v1/contacts/{id}", delete_contact)
