"""`ongea-pesa agent-config [--server-url URL]`: prints the ElevenLabs agent definition for this server."""

from __future__ import annotations

import argparse
import json

from voice_server.settings import Settings
from voice_server.tools.agent_config import agent_config


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "agent-config", help="print the ElevenLabs agent definition (tools, prompt, variables)"
    )
    p.add_argument(
        "--server-url",
        help="public base URL the agent's tools call (default ONGEA_PUBLIC_URL or http://HOST:PORT)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    settings = Settings()
    url = args.server_url or settings.public_url or f"http://{settings.host}:{settings.port}"
    print(json.dumps(agent_config(url), indent=2, ensure_ascii=False))
    return 0
