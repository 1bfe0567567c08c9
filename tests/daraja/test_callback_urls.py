"""Finding 6: callback URLs Safaricom accepts: under /v1/callbacks (never "mpesa"), and a secret path segment
that never holds a word Safaricom refuses (mpesa, m-pesa, safaricom, exe, exec, cmd, sql, query, any case)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ledger.daraja.client import CALLBACK_URL_FORBIDDEN, forbidden_word
from tests.mpesa.conftest import CALLBACK_SECRET, Harness
from voice_server.local_secrets import local_secret
from voice_server.settings import Settings


async def test_daraja_is_given_urls_under_v1_callbacks_and_calls_them_back(harness: Harness) -> None:
    """Before: /v1/mpesa/..., which Safaricom refuses to register or call."""
    user = await harness.user("5000.00")
    tx = await harness.confirmed(user, "send_phone", "1000", phone="0712345678")
    assert (await harness.settled(tx))["status"] == "completed"
    [request] = harness.sim.sent_payouts(str(tx))
    for key in ("ResultURL", "QueueTimeOutURL"):
        url = request.body[key]
        assert url.startswith(f"{harness.base_url}/v1/callbacks/")
        assert forbidden_word(url.removeprefix("http://")) is None
    assert all("/v1/callbacks/" in d.url and d.status == 200 for d in harness.sim.deliveries)
    async with harness.http.post(
        f"{harness.base_url}/v1/mpesa/{CALLBACK_SECRET}/payout/result", json={}
    ) as r:
        assert r.status == 404


@pytest.mark.parametrize("word", ["mpesa", "M-Pesa", "SAFARICOM", "exe", "Exec", "cmd", "SqL", "query"])
def test_a_stored_secret_with_a_refused_word_is_drawn_again(tmp_path: Path, word: str) -> None:
    stored = tmp_path / "secrets" / "mpesa_callback_secret"
    stored.parent.mkdir(parents=True)
    stored.write_text(f"abc{word}def")
    settings = Settings(data_dir=tmp_path)
    secret = settings.callback_secret()
    assert forbidden_word(secret) is None and len(secret) >= 40
    assert stored.read_text() == secret  # replaced on disk, so every process agrees
    assert settings.callback_secret() == secret


def test_generated_secrets_never_hold_a_refused_word(tmp_path: Path) -> None:
    """About 1 in 170 raw draws holds one of the words; every accepted one is clean."""
    for n in range(400):
        value = local_secret(tmp_path / str(n), "s", accept=lambda v: forbidden_word(v) is None)
        assert not any(word in value.lower() for word in CALLBACK_URL_FORBIDDEN)


def test_a_configured_secret_or_public_url_with_a_refused_word_refuses_to_start(tmp_path: Path) -> None:
    daraja = {"DARAJA_CONSUMER_KEY": "k", "DARAJA_CONSUMER_SECRET": "s", "data_dir": tmp_path}
    bad_secret = Settings(**daraja, mpesa_callback_secret="x-Exec-y-0123456789abcdefghij")  # type: ignore[arg-type]
    assert bad_secret.startup_refusal() == (
        "ONGEA_MPESA_CALLBACK_SECRET contains 'exec', which Safaricom refuses in callback URLs"
    )
    bad_url = Settings(**daraja, public_url="https://mpesa.example.co.ke")  # type: ignore[arg-type]
    assert bad_url.startup_refusal() == (
        "ONGEA_PUBLIC_URL contains 'mpesa', which Safaricom refuses in callback URLs"
    )
