"""Secrets never reach a log: the filter every log handler of a long-running command carries.

Its own small module, so a command that only logs (the sweeper, the M-Pesa worker) sets it up without
importing the HTTP application."""

from __future__ import annotations

import logging
import re

from voice_server.settings import Settings

_SECRET_IN_TEXT = re.compile(r"(/v1/(?:callbacks|mpesa))/[^/\s'\"]+")


class RedactSecrets(logging.Filter):
    """A safety net on every log handler: whatever logs a callback URL (ours, aiohttp's, a library's
    exception text), the secret path segment and the given secret values come out as `***`."""

    def __init__(self, *secrets: str) -> None:
        super().__init__()
        self.secrets = [s for s in secrets if s]

    def _clean(self, text: str) -> str:
        text = _SECRET_IN_TEXT.sub(r"\1/***", text)
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = self._clean(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self._clean(record.exc_text)
        return True


def install_log_redaction(settings: Settings) -> None:
    """Adds `RedactSecrets` (with the callback secret) to every handler of the root logger."""
    redact = RedactSecrets(settings.callback_secret())
    for handler in logging.getLogger().handlers:
        handler.addFilter(redact)
