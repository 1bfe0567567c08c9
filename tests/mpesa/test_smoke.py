from __future__ import annotations

from tests.mpesa.conftest import Harness


async def test_send_phone_completes(harness: Harness) -> None:
    user = await harness.user()
    tx = await harness.confirmed(user, "send_phone", "100", phone="0712345678")
    row = await harness.settled(tx)
    assert row["status"] == "completed", row
