"""The line every command prints about its database never carries the database password, wherever the
URL puts it (libpq also takes `?password=`), and a DATABASE_URL that is not a URL is not echoed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

SECRET = "s3cretPassw0rd"


@pytest.mark.parametrize(
    "shape",
    [
        "{scheme}://{user}:{secret}@{host}/{db}",
        "{scheme}://{host}/{db}?user={user}&password={secret}",
        "{scheme}://{host}/{db}?sslpassword={secret}&user={user}",
        "host={hostname} user={user} password={secret} dbname={db}",
    ],
)
def test_no_password_is_printed(attack_url: str, tmp_path: Path, shape: str) -> None:
    parts = urlsplit(attack_url)  # this run's own database, never the shared server's
    url = shape.format(
        scheme=parts.scheme,
        user=parts.username or "postgres",
        secret=SECRET,
        host=parts.netloc.rsplit("@", 1)[-1],
        hostname=parts.hostname,
        db=parts.path.lstrip("/") or "postgres",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ONGEA_", "DATABASE_URL"))}
    env["ONGEA_DATA_DIR"] = str(tmp_path)
    r = subprocess.run(
        [sys.executable, "-m", "voice_server.cli", "user", "list", "--limit", "1", "--database-url", url],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "using" in r.stderr + r.stdout
    assert SECRET not in r.stdout + r.stderr
    assert "Traceback" not in r.stderr
