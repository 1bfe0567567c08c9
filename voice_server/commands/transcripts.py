"""`ongea-pesa transcripts export SESSION_ID [--redact] [-o FILE] [--user PHONE_OR_ID]`: a kept voice session
as a replay transcript (shared/spec/transcripts.md), so a complaint about a conversation becomes a test that
`ongea-pesa replay` runs.

With `--user` the session is read as that user, under row level security (as
`GET /v1/sessions/{id}/transcript` reads it): another user's session is "no such voice session". Without it
the operator's database role reads it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import asyncpg

from ledger.models import LedgerError
from ledger.reads import as_user
from voice_server.commands.user_info import resolve_user
from voice_server.conversation.export import ExportError, Kept, dump, load_kept, to_transcript
from voice_server.loop import run as run_loop
from voice_server.runtime import command_settings, database
from voice_server.settings import Settings


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("transcripts", help="kept voice conversations: export one as a replay transcript")
    tsub = p.add_subparsers(dest="transcripts_command", required=True, metavar="SUBCOMMAND")
    export = tsub.add_parser("export", help="write a session's conversation in the replay format")
    export.add_argument("session_id", metavar="SESSION_ID", help="the voice session (vs_...)")
    export.add_argument(
        "--redact",
        action="store_true",
        help="replace names and phone numbers with made-up ones, consistently",
    )
    export.add_argument("-o", "--output", metavar="FILE", help="write to FILE (default: standard output)")
    export.add_argument("--user", metavar="PHONE_OR_ID", help="read as this user (their own sessions only)")
    export.add_argument(
        "--database-url", help="PostgreSQL URL (default: DATABASE_URL, else the embedded database)"
    )
    export.set_defaults(func=run_export)


def run_export(args: argparse.Namespace) -> int:
    settings = command_settings(args.database_url)
    try:
        text = run_loop(_export(settings, args.session_id, args.user, redact=args.redact))
    except (ExportError, LedgerError) as exc:
        message = exc.message if isinstance(exc, LedgerError) else str(exc)
        print(f"ongea-pesa transcripts export: {message}", file=sys.stderr)
        return 1
    if args.output:
        Path(args.output).write_text(text, "utf-8")
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


async def _export(settings: Settings, session_id: str, who: str | None, *, redact: bool) -> str:
    async with database(settings, max_size=2) as pool:
        kept = await _read(pool, session_id, who)
        # (Only to make sure the made-up PIN is never the user's own: the hash never leaves this process.)
        kept.pin_hash = await pool.fetchval("SELECT pin_hash FROM profiles WHERE id = $1", kept.user_id)
        return dump(to_transcript(kept, redact=redact))


async def _read(pool: asyncpg.Pool, session_id: str, who: str | None) -> Kept:
    if who is None:
        return await load_kept(pool, session_id)
    user_id = await resolve_user(pool, who)
    if user_id is None:
        raise ExportError(f"no user {who!r}")
    async with as_user(pool, user_id) as conn:
        return await load_kept(conn, session_id)
