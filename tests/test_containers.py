"""The Dockerfile and compose.yaml, checked without a Docker engine (none runs here; the images are not built
by these tests): every command they run is one `ongea-pesa` accepts, every variable one the settings know,
the services point at each other, the embedded database's folder is a volume, the server is published on the
host's loopback only, and the image run in production without DATABASE_URL refuses to start."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from pydantic import SecretStr

from ledger.daraja.credentials import generate_certificate
from voice_server.cli import build_parser
from voice_server.settings import Settings, startup_problems

ROOT = Path(__file__).resolve().parents[1]
ONGEA_SERVICES = ("migrate", "mpesa-sim", "server")


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
    return loaded


def dockerfile() -> tuple[dict[str, str], list[str], list[str]]:
    """The runtime stage's ENV, VOLUME and CMD."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    runtime = text.split("\nFROM ")[-1]
    env: dict[str, str] = {}
    volumes: list[str] = []
    cmd: list[str] = []
    for line in runtime.splitlines():
        word, _, rest = line.strip().partition(" ")
        if word == "ENV":
            env.update(dict(pair.split("=", 1) for pair in shlex.split(rest)))
        elif word == "VOLUME":
            volumes += json.loads(rest)
        elif word == "CMD":
            cmd = json.loads(rest)
    return env, volumes, cmd


def setting_names() -> set[str]:
    names: set[str] = set()
    for name, field in Settings.model_fields.items():
        choices = getattr(field.validation_alias, "choices", None)
        names |= {str(c) for c in choices} if choices else {f"ONGEA_{name.upper()}"}
    return names | {"ONGEA_MIGRATIONS_DIR", "PYTHONUNBUFFERED"}


def option(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


def test_every_command_and_variable_is_one_the_program_knows() -> None:
    parser = build_parser()
    services = compose()["services"]
    known = setting_names()
    for name in ONGEA_SERVICES:
        command = services[name]["command"]
        assert command[0] == "ongea-pesa"
        parser.parse_args(command[1:])  # exits (a failed test) on anything it does not accept
        assert set(services[name].get("environment", {})) <= known, name
        assert services[name]["build"] == "." and services[name]["image"] == "ongea-pesa"
    env, _, cmd = dockerfile()
    assert set(env) <= known
    parser.parse_args(cmd[1:])


def test_the_services_point_at_each_other() -> None:
    services = compose()["services"]
    db, sim, server = services["db"], services["mpesa-sim"], services["server"]
    assert db["image"] == "postgres:16"
    url = urlsplit(server["environment"]["DATABASE_URL"])
    assert (url.hostname, url.port, url.username, url.password, url.path) == (
        "db", 5432, db["environment"]["POSTGRES_USER"], db["environment"]["POSTGRES_PASSWORD"],
        "/" + db["environment"]["POSTGRES_DB"],
    )  # fmt: skip
    assert services["migrate"]["environment"]["DATABASE_URL"] == server["environment"]["DATABASE_URL"]
    daraja = urlsplit(server["environment"]["DARAJA_BASE_URL"])
    assert daraja.hostname == "mpesa-sim" and str(daraja.port) == option(sim["command"], "--port")
    assert option(sim["command"], "--host") == "0.0.0.0"  # reachable from the server's container
    assert option(sim["command"], "--consumer-key") == server["environment"]["DARAJA_CONSUMER_KEY"]
    assert option(sim["command"], "--consumer-secret") == server["environment"]["DARAJA_CONSUMER_SECRET"]
    # The simulator's certificate reaches the server through a volume both mount.
    certificate = Path(server["environment"]["DARAJA_CERTIFICATE_PATH"])
    assert option(sim["command"], "--certificate-out") == str(certificate)
    mounts = {
        s: {v.split(":")[1]: v.split(":")[0] for v in services[s]["volumes"]} for s in ("mpesa-sim", "server")
    }
    folder = str(certificate.parent)
    assert mounts["mpesa-sim"][folder] == mounts["server"][folder]
    # The simulator calls the server back inside the network.
    assert urlsplit(server["environment"]["ONGEA_PUBLIC_URL"]).hostname == "server"
    # Order: the database is healthy before migrations; migrations done and the simulator up before serve.
    assert services["migrate"]["depends_on"] == {"db": {"condition": "service_healthy"}}
    assert server["depends_on"] == {
        "migrate": {"condition": "service_completed_successfully"},
        "mpesa-sim": {"condition": "service_healthy"},
    }
    assert "healthcheck" in db and "healthcheck" in sim
    declared = set(compose()["volumes"])
    for service in services.values():
        for volume in service.get("volumes", []):
            assert volume.split(":")[0] in declared


def test_the_server_is_published_on_the_host_loopback_only() -> None:
    for name, service in compose()["services"].items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), (name, port)
    assert compose()["services"]["server"]["ports"] == ["127.0.0.1:8080:8080"]


def test_the_embedded_database_folder_is_a_volume() -> None:
    env, volumes, _ = dockerfile()
    assert env["ONGEA_DATA_DIR"] in volumes
    server = compose()["services"]["server"]
    assert f"server-data:{env['ONGEA_DATA_DIR']}" in server["volumes"]


def test_the_compose_server_settings_have_no_problem(tmp_path: Path) -> None:
    """As the server would read them in its container (the simulator's certificate written where it says)."""
    env = {**dockerfile()[0], **compose()["services"]["server"]["environment"]}
    certificate = tmp_path / "simulator.cer"
    certificate.write_bytes(generate_certificate()[0])
    env["DARAJA_CERTIFICATE_PATH"] = str(certificate)
    fields = {
        name: env[alias]
        for name, field in Settings.model_fields.items()
        for alias in [*(getattr(field.validation_alias, "choices", None) or []), f"ONGEA_{name.upper()}"]
        if alias in env
    }
    settings = Settings(**{**fields, "data_dir": tmp_path})
    assert settings.daraja_configured and settings.database_url
    assert startup_problems(settings) == []
    assert startup_problems(settings.model_copy(update={"jwt_secret": SecretStr("short")})) != []


def test_the_image_refuses_production_without_database_url(tmp_path: Path) -> None:
    env, _, cmd = dockerfile()
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("DARAJA_", "ONGEA_", "ELEVENLABS_"))}
    environ.pop("DATABASE_URL", None)
    environ.update(env)
    environ.update(
        {"ONGEA_DATA_DIR": str(tmp_path / "data"), "ONGEA_MIGRATIONS_DIR": str(ROOT / "sql"),
         "DARAJA_ENVIRONMENT": "production", "ONGEA_PORT": "0"}
    )  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "voice_server.cli", *cmd[1:]],
        env=environ, capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 2
    first = done.stderr.splitlines()[0]
    assert re.match(r"ongea-pesa: refusing to start: DATABASE_URL must be set in production", first), first
    assert not (tmp_path / "data" / "pg").exists()  # no embedded database was started


def test_the_build_stage_copies_every_package_the_project_installs() -> None:
    """A package left out of the image's wheel (daraja_sim was) makes `ongea-pesa serve` die on its import."""
    found = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    build = (ROOT / "Dockerfile").read_text().split("\nFROM ")[1]  # the build stage
    copied = {line.split()[1] for line in build.splitlines() if line.startswith("COPY ")}
    assert {pattern.rstrip("*") for pattern in found["include"]} <= copied, copied
