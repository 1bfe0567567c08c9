"""Local development secrets: generated once and kept in the data directory so that the server, the CLI
(`ongea-pesa token`) and a restart all agree, without anyone configuring a secret to try the product."""

from __future__ import annotations

import fcntl
import os
import secrets
import tempfile
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
        if value and (accept is None or accept(value)):
            return value
        # Empty (left by an older version's crash mid-write) or refused: replaced under a lock.
        return _replace(path, accept or bool)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    value = _draw(accept)
    # Written whole to a private temporary file, then linked into place: link() fails when the name exists,
    # so when several processes start at once the first complete file wins and nobody ever reads a file
    # that is still being written (an empty secret).
    fd, temporary = tempfile.mkstemp(prefix=f".{name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(value)
            fh.flush()
            os.fsync(fh.fileno())
        os.link(temporary, path)
    except FileExistsError:
        return local_secret(data_dir, name, accept)
    finally:
        os.unlink(temporary)
    return value


def _replace(path: Path, accept: Callable[[str], bool]) -> str:
    lock = os.open(path.parent / ".lock", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        value = path.read_text().strip()
        if value and accept(value):
            return value  # another process replaced it while we waited
        value = _draw(accept)
        fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        with os.fdopen(fd, "w") as fh:
            fh.write(value)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(temporary, path)  # atomic: readers see the old file or the new one, whole
        return value
    finally:
        os.close(lock)  # closing releases the lock
