"""What a newcomer sees when the configuration is wrong: one line saying what and how to fix it, never a
traceback. `explain(exc)` turns the errors of a bad DATABASE_URL, an unreachable or refusing server, a port
in use or a bad setting into that line; `ongea-pesa` prints it and exits non-zero. Also the one line every
command prints to say which database it uses."""

from __future__ import annotations

import errno
import socket
import sys
from pathlib import Path
from urllib.parse import parse_qs, parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg
from pydantic import ValidationError

from ledger.migrate import MigrationError


class StartupError(Exception):
    """A start-up failure already phrased for people."""


_SECRET_PARAMS = {"password", "sslpassword"}  # libpq takes a password in the query string too


def describe_dsn(dsn: str) -> str:
    """The URL without its password, wherever it is (safe to print); what is not a URL is not echoed."""
    try:
        parts = urlsplit(dsn)
        if parts.scheme not in ("postgres", "postgresql"):
            return "(not a postgresql:// URL)"
        netloc = parts.netloc
        if "@" in netloc:
            userinfo, host = netloc.rsplit("@", 1)
            user = userinfo.split(":", 1)[0]
            netloc = f"{user}@{host}" if user else host
        query = urlencode(
            [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in _SECRET_PARAMS]
        )
        return urlunsplit(parts._replace(netloc=netloc, query=query))
    except ValueError:
        return "(unreadable URL)"


def database_banner(database_url: str | None, dsn: str, data_dir: Path) -> str:
    if database_url:
        return f"ongea-pesa: using database {describe_dsn(dsn)}"
    socket_dir = parse_qs(urlsplit(dsn).query).get("host", [""])[0]
    where = socket_dir or str((data_dir / "pg").resolve())
    return f"ongea-pesa: using the embedded PostgreSQL in {where} (DATABASE_URL is not set)"


def announce_database(database_url: str | None, dsn: str, data_dir: Path) -> None:
    print(database_banner(database_url, dsn, data_dir), file=sys.stderr, flush=True)


def _setting_name(loc: tuple[int | str, ...]) -> str:
    from voice_server.settings import Settings

    name = str(loc[0]) if loc else "?"
    field = Settings.model_fields.get(name)
    if field is None:
        return name
    choices = getattr(field.validation_alias, "choices", None)
    return str(choices[0]) if choices else f"ONGEA_{name.upper()}"


def validation_lines(exc: ValidationError) -> list[str]:
    """One line per setting that cannot be read (all of them, not only the first)."""
    lines: list[str] = []
    for error in exc.errors():
        value = error.get("input")
        shown = "" if isinstance(value, dict) else f" (got {str(value)[:60]!r})"
        message = str(error["msg"]).removeprefix("Value error, ")
        if not error["loc"]:  # a rule between settings
            lines.append(f"bad settings: {message}")
        else:
            lines.append(f"bad setting {_setting_name(error['loc'])}: {message}{shown}")
    return lines


def explain(exc: BaseException) -> str | None:
    """One line for a configuration or environment problem; None for a bug (let it show)."""
    if isinstance(exc, StartupError | MigrationError):
        return str(exc)
    if isinstance(exc, ValidationError):
        return validation_lines(exc)[0]
    if isinstance(exc, asyncpg.ClientConfigurationError) or (
        isinstance(exc, ValueError | OverflowError)
        and any(word in str(exc) for word in ("DSN", "URL", "port must"))
    ):
        return (
            f"DATABASE_URL is not a usable PostgreSQL URL ({exc}); "
            "expected postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE"
        )
    if isinstance(exc, asyncpg.InvalidAuthorizationSpecificationError | asyncpg.InvalidPasswordError):
        return f"the database refused the login: {exc} (check the user and password in DATABASE_URL)"
    if isinstance(exc, asyncpg.InvalidCatalogNameError):
        return f"{exc} on that server (create it, or fix the database name in DATABASE_URL)"
    if isinstance(exc, asyncpg.InsufficientPrivilegeError):
        return f"the database role lacks a privilege: {exc} (use a role that owns the database)"
    if isinstance(exc, asyncpg.PostgresError | asyncpg.InterfaceError):
        return f"database error: {exc}"
    if isinstance(exc, socket.gaierror):
        return f"cannot reach the database: unknown host in DATABASE_URL ({exc.strerror})"
    if isinstance(exc, TimeoutError):
        return "cannot reach the database: the connection timed out (is the host in DATABASE_URL right?)"
    if isinstance(exc, OSError) and exc.errno == errno.EADDRINUSE:
        return f"the port is already in use ({exc.strerror}): stop the other server or pick another --port"
    if isinstance(exc, ConnectionError):
        return f"cannot reach the database: {exc} (is PostgreSQL running at DATABASE_URL's host and port?)"
    if isinstance(exc, OSError):
        return str(exc)
    return None
