"""`ongea-pesa agent-config [--server-url URL] [--apply]`: prints the ElevenLabs agent definition for this
server, or (`--apply`) creates or updates that agent on ElevenLabs through the official SDK."""

from __future__ import annotations

import argparse
import json
import sys

import httpx
from elevenlabs.core.api_error import ApiError

from voice_server.commands.agent import Applied, apply_agent
from voice_server.loop import run as run_loop
from voice_server.runtime import command_settings, database
from voice_server.settings import Settings
from voice_server.tools.agent_config import agent_config


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "agent-config", help="print the ElevenLabs agent definition (tools, prompt, variables), or --apply it"
    )
    p.add_argument(
        "--server-url",
        help="public base URL the agent's tools call (default ONGEA_PUBLIC_URL or http://HOST:PORT)",
    )
    p.add_argument(
        "--apply",
        action="store_true",
        help="create the agent on ElevenLabs (ELEVENLABS_API_KEY), or update the one created before",
    )
    p.add_argument("--database-url", help="PostgreSQL URL where --apply keeps the agent's id")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    settings = command_settings(args.database_url)
    url = args.server_url or settings.public_url or f"http://{settings.host}:{settings.port}"
    if not args.apply:
        print(json.dumps(agent_config(url), indent=2, ensure_ascii=False))
        return 0
    if settings.elevenlabs_api_key is None:
        print("agent-config: --apply needs ELEVENLABS_API_KEY (ElevenLabs: API keys)", file=sys.stderr)
        return 2
    if not url.startswith("https://"):
        print(
            f"agent-config: warning: the agent's tools will call {url}; ElevenLabs can only reach a public "
            "https:// URL (set ONGEA_PUBLIC_URL or --server-url)",
            file=sys.stderr,
        )
    try:
        applied = run_loop(_apply(settings, url))
    except ApiError as exc:
        print(f"agent-config: ElevenLabs answered HTTP {exc.status_code}: {exc.body}", file=sys.stderr)
        return 1
    except httpx.HTTPError as exc:  # the API cannot be reached: one line, not a traceback
        where = settings.elevenlabs_base_url or "the ElevenLabs API"
        print(f"agent-config: cannot reach {where}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    _report(applied, settings)
    return 0


async def _apply(settings: Settings, url: str) -> Applied:
    async with database(settings, max_size=2) as pool:
        return await apply_agent(settings, pool, url)


def _report(applied: Applied, settings: Settings) -> None:
    if applied.action == "unchanged":
        print(f"agent {applied.agent_id}: up to date, nothing sent")
    else:
        print(f"agent {applied.agent_id}: {applied.action}")
    if settings.elevenlabs_agent_id != applied.agent_id:
        print(f"  set ELEVENLABS_AGENT_ID={applied.agent_id} on every server")
    if applied.webhook_secret is not None:
        # ElevenLabs shows a webhook's secret only when it is created: this is the one time it can be copied.
        print(f"post-call webhook {applied.webhook_id}: created; ElevenLabs signs its calls with a secret")
        print(f"  shown only now: set ELEVENLABS_WEBHOOK_SECRET={applied.webhook_secret} on every server")
    else:
        print(f"post-call webhook {applied.webhook_id}: in place")
        if settings.elevenlabs_webhook_secret is None:
            print(
                "  ELEVENLABS_WEBHOOK_SECRET is not set: copy the secret ElevenLabs showed when this webhook "
                "was created, or delete the webhook (ElevenLabs > Settings > Webhooks) and --apply again",
                file=sys.stderr,
            )
