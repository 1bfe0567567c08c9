"""`ongea-pesa check [--production]`: every problem of this configuration at once, without starting anything.

First the settings (what `serve` would refuse, in the README's Deploy order), then each connection it can
make: the database and whether its migrations are current, a Daraja token, the ElevenLabs API key. One line
per problem on stderr, one `ok:`/`skipped:` line per connection that is fine or not configured on stdout.
Exit status: 0 nothing to fix, 1 something to fix.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field

import asyncpg
from elevenlabs.core.api_error import ApiError

from ledger.daraja.client import PRODUCTION_URL, SANDBOX_URL, DarajaClient, DarajaConfig, DarajaError
from ledger.daraja.tokens import DatabaseTokenStore, TokenCache, app_key
from ledger.db import create_pool
from ledger.exposure import exposure, revocations
from ledger.migrate import MigrationError, pending_migrations
from voice_server.commands.agent import elevenlabs_client
from voice_server.loop import run as run_loop
from voice_server.runtime import read_settings
from voice_server.settings import Settings, startup_problems
from voice_server.startup_errors import describe_dsn, explain

# A person waits for the answer: a server that does not answer in this long is a problem to report.
CONNECT_TIMEOUT_SECONDS = 10.0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "check", help="list every problem of the configuration and try its connections, starting nothing"
    )
    p.add_argument(
        "--production",
        action="store_true",
        help="check as production (DARAJA_ENVIRONMENT=production) whatever DARAJA_ENVIRONMENT says",
    )
    p.add_argument("--database-url", help="PostgreSQL URL (default DATABASE_URL)")
    p.set_defaults(func=run)


@dataclass
class Report:
    """What was found, in the order it was looked at (the README's Deploy order)."""

    lines: list[tuple[bool, str]] = field(default_factory=list)  # (a problem?, the line)

    def problem(self, line: str) -> None:
        self.lines.append((True, line))

    def fine(self, line: str) -> None:
        self.lines.append((False, line))

    @property
    def problems(self) -> int:
        return sum(1 for problem, _ in self.lines if problem)


def run(args: argparse.Namespace) -> int:
    overrides: dict[str, object] = {}
    if args.database_url:
        overrides["database_url"] = args.database_url
    if args.production:
        overrides["daraja_environment"] = "production"
    settings = read_settings("check", overrides)
    if settings is None:
        return 1
    report = Report()
    for line in startup_problems(settings):
        report.problem(line)
    run_loop(_connections(settings, report))
    for is_problem, line in report.lines:  # one stream's order, whatever the terminal does with two
        if is_problem:
            print(f"ongea-pesa check: {line}", file=sys.stderr, flush=True)
        else:
            print(line, flush=True)
    count = report.problems
    print(
        f"ongea-pesa check: {count} problem(s), listed in the order to fix them"
        if count
        else "ongea-pesa check: nothing to fix"
    )
    return 1 if count else 0


async def _connections(settings: Settings, report: Report) -> None:
    pool = await _database(settings, report)
    try:
        await _daraja(settings, pool, report)
        await _elevenlabs(settings, report)
    finally:
        if pool is not None:
            await pool.close()


async def _database(settings: Settings, report: Report) -> asyncpg.Pool | None:
    """A pool on a database whose migrations are current, or None (and the reason reported)."""
    if not settings.database_url:
        why = (
            "production refuses to run without it"
            if settings.daraja_environment == "production"
            else "serve starts the embedded one"
        )
        report.fine(f"skipped: database: DATABASE_URL is not set (not checked; {why})")
        return None
    where = describe_dsn(settings.database_url)
    try:
        pool = await create_pool(
            settings.database_url, min_size=1, max_size=2, timeout=CONNECT_TIMEOUT_SECONDS
        )
    except Exception as exc:  # every way a connection fails is a line to show, not a traceback
        report.problem(f"database {where}: {explain(exc) or f'{type(exc).__name__}: {exc}'}")
        return None
    current = False
    try:
        async with pool.acquire() as conn:
            pending = await pending_migrations(conn)
    except MigrationError as exc:
        report.problem(f"database {where}: {exc}")
    else:
        current = not pending
        if pending:
            report.problem(
                f"database {where}: {len(pending)} migration(s) not applied ({', '.join(pending)}): "
                "run ongea-pesa migrate as the role that owns the schema"
            )
        else:
            report.fine(f"ok: database {where} (migrations current)")
    if current:
        await _grants(pool, where, report)
    if not current:
        await pool.close()  # its tables are not the ones the Daraja check would read
        return None
    return pool


async def _grants(pool: asyncpg.Pool, where: str, report: Report) -> None:
    """The API roles hold only the app's grants: a blanket GRANT after the migrations (a common Supabase
    instruction) would let a user read their PIN hash or call a money function as themselves."""
    async with pool.acquire() as conn:
        found = await exposure(conn)
        if not found:
            report.fine("ok: database grants (anon, authenticated and PUBLIC hold only the app's)")
            return
        fixes = await revocations(conn, found)
    shown = ", ".join(str(g) for g in found[:3]) + (f" and {len(found) - 3} more" if len(found) > 3 else "")
    report.problem(
        f"database {where}: anon, authenticated or PUBLIC hold {len(found)} grant(s) the migrations took "
        f"away ({shown}); run these statements as the owner of the schema to take them back:\n"
        + "\n".join(fixes)
    )


async def _daraja(settings: Settings, pool: asyncpg.Pool | None, report: Report) -> None:
    if not settings.daraja_configured:
        report.fine("skipped: Daraja: DARAJA_CONSUMER_KEY and _SECRET are not set (the simulator stands in)")
        return
    assert settings.daraja_consumer_key is not None and settings.daraja_consumer_secret is not None
    base = settings.daraja_base_url or (
        PRODUCTION_URL if settings.daraja_environment == "production" else SANDBOX_URL
    )
    key = settings.daraja_consumer_key.get_secret_value()
    config = DarajaConfig(
        base_url=base,
        consumer_key=key,
        consumer_secret=settings.daraja_consumer_secret.get_secret_value(),
        shortcode=settings.daraja_shortcode,
        passkey="",
        b2c_shortcode=settings.daraja_b2c_shortcode,
        initiator_name=settings.daraja_initiator_name,
        initiator_password="",
        certificate=None,
        request_timeout=CONNECT_TIMEOUT_SECONDS,
    )
    # With the database, the token every server shares is used (a fresh one would invalidate theirs, as
    # Daraja's tokens do); it is fetched, and stored for them, only when there is none.
    tokens = DatabaseTokenStore(pool, app_key(base, key)) if pool is not None else TokenCache()
    try:
        async with DarajaClient(config, token_cache=tokens) as client:
            await client.access_token()
    except (DarajaError, asyncpg.PostgresError, OSError) as exc:
        report.problem(f"Daraja {base}: no access token with DARAJA_CONSUMER_KEY/SECRET: {exc}")
        return
    report.fine(f"ok: Daraja {base} (access token for DARAJA_CONSUMER_KEY)")


async def _elevenlabs(settings: Settings, report: Report) -> None:
    if settings.elevenlabs_api_key is None:
        report.fine("skipped: ElevenLabs: ELEVENLABS_API_KEY is not set (apps talk to this server)")
        return
    client = elevenlabs_client(settings, timeout=CONNECT_TIMEOUT_SECONDS)
    agent = settings.elevenlabs_agent_id
    try:
        if agent:
            await client.conversational_ai.agents.get(agent)
        else:
            await client.conversational_ai.agents.list(page_size=1)
    except ApiError as exc:
        what = {401: "ELEVENLABS_API_KEY was refused", 404: f"no agent {agent} (ELEVENLABS_AGENT_ID)"}
        report.problem(f"ElevenLabs: {what.get(exc.status_code or 0, f'HTTP {exc.status_code}')}: {exc.body}")
        return
    except Exception as exc:  # httpx's connection errors: the API cannot be reached
        report.problem(f"ElevenLabs: cannot reach the API: {type(exc).__name__}: {exc}")
        return
    report.fine(f"ok: ElevenLabs API key{f' and agent {agent}' if agent else ''}")
