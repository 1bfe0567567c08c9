"""Local development secrets: generated once and kept in the data directory so that the server, the CLI
(`ongea-pesa token`) and a restart all agree, without anyone configuring a secret to try the product."""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def local_secret(data_dir: Path, name: str) -> str:
    path = data_dir / "secrets" / name
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    value = secrets.token_urlsafe(48)
    # O_EXCL: when two processes start at once, the first writer wins and both read its value.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as fh:
        fh.write(value)
    return value
