"""Outside attack: a callback body with a number beyond a float's range (`1e400`, which Python's JSON reads as
infinity) answered 500 and was not recorded at all, on every callback route (STK, payout and status results,
C2B validation and confirmation): PostgreSQL cannot store infinity as JSON. A 500 breaks "never a 500 for bad
input", and a confirmation that cannot be recorded is a deposit nobody will ever see. Now such a body is not
JSON: a 400 (or a C2B rejection), kept raw for a person, nothing moved."""

from __future__ import annotations

import pytest

from tests.mpesa.conftest import Harness

RAW = (
    b'{"TransID": "TATTACK01", "TransAmount": 1e400, "BillRefNumber": "OPXXXXXX",'
    b' "Result": {"ResultCode": 1e400, "OriginatorConversationID": "x", "ConversationID": "y"},'
    b' "Body": {"stkCallback": {"CheckoutRequestID": "ws_CO_x", "ResultCode": -1e999}}}'
)


@pytest.mark.parametrize(
    "path", ["c2b/confirmation", "c2b/validation", "payout/result", "payout/timeout", "stk", "status/result"]
)
async def test_an_out_of_range_number_is_bad_input_never_a_500(harness: Harness, path: str) -> None:
    before = await harness.pool.fetchval("SELECT count(*) FROM mpesa_callbacks")
    async with harness.http.post(
        f"{harness.callback_base}/{path}", data=RAW, headers={"Content-Type": "application/json"}
    ) as resp:
        status = resp.status
        body = await resp.json()
    if path == "c2b/validation":
        assert status == 200 and body["ResultDesc"] == "Rejected", body
    else:
        assert status == 400 and body["error"]["code"] == "invalid_json", body
        # Kept raw for a person: nothing Daraja sends is lost.
        after = await harness.pool.fetchval("SELECT count(*) FROM mpesa_callbacks")
        assert after == before + 1
    async with harness.http.get(f"{harness.base_url}/healthz") as resp:
        assert resp.status == 200
    # No deposit was invented from it.
    assert await harness.pool.fetchval("SELECT count(*) FROM c2b_deposits WHERE trans_id = 'TATTACK01'") == 0
