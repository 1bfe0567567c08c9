"""Local development secrets: generated once and kept in the data directory so that the server, the CLI
(`ongea-pesa token`) and a restart all agree, without anyone configuring a secret to try the product."""

from __future__ import annotations

import fcntl
import os
import secrets
from collections.abc import Callable
from pathlib import Path


def _draw(accept: Callable[[str], bool] | None) -> str:
    while True:
        value = secrets.token_urlsafe(48)
        if accept is None or accept(value):
            return value


def local_secret(data_dir: Path, name: str, accept: Callable[[str], bool] | None = None) -> str:
    """The secret `name` of the data directory, generated on first use. `accept`: a value it refuses is
    drawn again (and a stored one it refuses is replaced, under a lock, so all processes agree)."""
    path = data_dir / "secrets" / name
    try:
        value = path.read_text().strip()
        if accept is None or accept(value):
            return value
        return _replace(path, accept)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    value = _draw(accept)
    # O_EXCL: when two processes start at once, the first writer wins and both read its value.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return local_secret(data_dir, name, accept)
    with os.fdopen(fd, "w") as fh:
        fh.write(value)
    return value


def _replace(path: Path, accept: Callable[[str], bool]) -> str:
    lock = os.open(path.parent / ".lock", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        value = path.read_text().strip()
        if accept(value):
            return value  # another process replaced it while we waited
        value = _draw(accept)
        temporary = path.with_name(path.name + ".new")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(value)
        os.replace(temporary, path)
        return value
    finally:
        os.close(lock)  # closing releases the lock
