"""Typed keys of what the aiohttp application carries (aiohttp's AppKey keeps them type-checked)."""

from __future__ import annotations

import asyncpg
from aiohttp import web

from voice_server.metrics import Metrics
from voice_server.session_tokens import SessionTokens
from voice_server.settings import Settings

POOL_KEY = web.AppKey("pool", asyncpg.Pool)
SETTINGS_KEY = web.AppKey("settings", Settings)
METRICS_KEY = web.AppKey("metrics", Metrics)
SESSION_TOKENS_KEY = web.AppKey("session_tokens", SessionTokens)
