"""Schemathesis against the served `/openapi.json`, with a valid user token: for every operation a bounded
number of generated requests (valid and not), and none may answer 500 or break its own documented schema,
status codes or content type. The server is the real `ongea-pesa serve` process on the run's database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from tests.ledger.conftest import fresh_phone
from tests.serving import ServeProcess

CHECKS = (not_a_server_error, response_schema_conformance, status_code_conformance, content_type_conformance)


@pytest.fixture(scope="module")
def served_api(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    data = tmp_path_factory.mktemp("schemathesis")
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DARAJA_", "ONGEA_", "STRIPE_"))}
    env = {
        **clean,
        "ONGEA_DATA_DIR": str(Path(data) / "data"),
        "STRIPE_WEBHOOK_SECRET": "whsec_schemathesis",
        "ONGEA_LOG_LEVEL": "WARNING",
        # All connections opened at start: the test PostgreSQL is shared, and may refuse new ones mid-run.
        "ONGEA_DB_POOL_MIN": "6",
        "ONGEA_DB_POOL_MAX": "6",
    }
    made = subprocess.run(
        [
            sys.executable,
            "-m",
            "voice_server.cli",
            "user",
            "add",
            "--phone",
            fresh_phone(),
            "--balance",
            "1000",
            "--plan",
            "basic",
            "--json",
            "--database-url",
            database_url,
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    user = json.loads(made.stdout)
    server = ServeProcess(["--database-url", database_url], {**env, "ONGEA_LOG_LEVEL": "INFO"}, limit=60)
    yield {"base": server.base, "token": user["token"]}
    server.stop()
    log = server.output()
    assert "Traceback" not in log, log


@pytest.fixture(scope="module")
def api_schema(served_api: dict[str, str]) -> Any:
    return schemathesis.openapi.from_url(f"{served_api['base']}/openapi.json")


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=6, deadline=None, database=None, suppress_health_check=list(HealthCheck))
def test_no_500_and_answers_match_the_document(case: Any, served_api: dict[str, str]) -> None:
    response = case.call(
        base_url=served_api["base"], headers={"Authorization": f"Bearer {served_api['token']}"}, timeout=20
    )
    case.validate_response(response, checks=list(CHECKS))
