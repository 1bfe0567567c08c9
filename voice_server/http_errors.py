"""The one error shape of the HTTP API: `{"error": {"code": ..., "message": ...}}` with a fitting status."""

from __future__ import annotations

from aiohttp import web


def json_error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


class ApiError(Exception):
    """Raised by a handler (or a helper it calls) to answer with the one error shape: the app's middleware
    turns it into `json_error(status, code, message)`, so handlers need not pass error answers back up."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
