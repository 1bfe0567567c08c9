"""Daraja's JSON error bodies: `{requestId, errorCode, errorMessage}`, also for unknown paths and methods."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable

from aiohttp import web

from daraja_sim import paths

INVALID = "400.002.02"  # "Bad Request - Invalid <Field>"
INVALID_JSON = "400.002.05"  # "Invalid Request Payload"
NOT_FOUND = "404.001.01"
METHOD_NOT_ALLOWED = "405.001"
STK_FAILURE = "500.001.1001"  # STK: wrong credentials, merchant does not exist, subscriber locked, pending
DUPLICATE = "500.002.1001"
INTERNAL = "500.003.1001"  # also registerurl's "already registered"
SPIKE_ARREST = "500.003.02"
QUOTA = "500.003.03"
THROTTLED = {SPIKE_ARREST: "System is busy. Please try again in few minutes.", QUOTA: "Quota Violation"}

# How each API reports an invalid or expired access token (HTTP status, errorCode), from its portal page.
TOKEN_ERRORS: dict[str, tuple[int, str]] = {
    paths.STK_PUSH: (404, "404.001.03"),
    paths.STK_QUERY: (404, "404.001.03"),
    paths.REVERSAL: (404, "404.001.03"),
    paths.B2C: (401, "401.002.01"),
    paths.B2C_V1: (401, "401.002.01"),
    paths.B2POCHI: (401, "401.002.01"),
    paths.BALANCE: (401, "401.002.01"),
    paths.B2B: (400, "400.003.01"),
    paths.STATUS: (400, "400.003.01"),
}


def daraja_error(status: int, code: str, message: str) -> web.Response:
    return web.json_response(
        {
            "requestId": f"{secrets.token_hex(2)}-{secrets.token_hex(2)}-{secrets.randbelow(10**7)}",
            "errorCode": code,
            "errorMessage": message,
        },
        status=status,
    )


def invalid(field: str) -> web.Response:
    return daraja_error(400, INVALID, f"Bad Request - Invalid {field}")


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Unknown paths and wrong methods answer as Daraja does (JSON), never aiohttp's plain text."""
    try:
        return await handler(request)
    except web.HTTPMethodNotAllowed:
        return daraja_error(405, METHOD_NOT_ALLOWED, f"{request.method} Method Not Allowed")
    except web.HTTPNotFound:
        return daraja_error(404, NOT_FOUND, "Resource not found")
