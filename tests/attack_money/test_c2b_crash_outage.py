"""Outside attack (a crash point plus an outage): a C2B confirmation recorded but not yet applied when the
server died was dropped for good if the server stayed down for more than ten minutes.

Re-applying recorded callbacks looked only at those received in the last ten minutes (a bound meant for STK
callbacks kept while they wait for their push's answer). For a deposit with a reference we do not know (a
person mistyped it), Pull Transactions cannot help either: it looks only for references we expect. The money
was in the paybill, `c2b_deposits` held nothing and no log asked a person to look. Now a recorded C2B
confirmation is applied whatever its age (it never waits for anything). Real HTTP, real PostgreSQL."""

from __future__ import annotations

import uuid
from decimal import Decimal

from ledger.mpesa_callbacks import record_callback
from tests.mpesa.conftest import Harness

PAYBILL = "600000"


async def test_a_recorded_deposit_is_applied_after_a_long_outage(harness: Harness) -> None:
    trans_id = f"T{uuid.uuid4().hex[:9].upper()}"
    body = {
        "TransactionType": "Pay Bill",
        "TransID": trans_id,
        "TransTime": "20261129120000",
        "TransAmount": "4200.00",
        "BusinessShortCode": PAYBILL,
        "BillRefNumber": "OP-TYPO-99",
        "InvoiceNumber": "",
        "OrgAccountBalance": "",
        "ThirdPartyTransID": "",
        "MSISDN": "2547 ***** 149",
        "FirstName": "JANE",
    }
    # The route recorded it (as it does before anything else), then the server died before applying it, and
    # came back twenty minutes later.
    callback_id = await record_callback(harness.pool, "c2b_confirmation", body)
    await harness.pool.execute(
        "UPDATE mpesa_callbacks SET received_at = now() - interval '20 minutes' WHERE id = $1", callback_id
    )

    async def applied() -> bool:
        return bool(
            await harness.pool.fetchval(
                "SELECT processed_at IS NOT NULL FROM mpesa_callbacks WHERE id = $1", callback_id
            )
        )

    await harness.wait_for(applied)
    # The money that arrived is on record for a person, once.
    deposit = await harness.pool.fetchrow("SELECT * FROM c2b_deposits WHERE trans_id = $1", trans_id)
    assert deposit is not None, "a deposit that arrived is nowhere in c2b_deposits"
    assert deposit["outcome"] == "unmatched" and deposit["amount"] == Decimal("4200.00")
    assert deposit["resolved_at"] is None
    # Kept for a person: no wallet was credited by it.
    assert deposit["transaction_id"] is None and deposit["user_id"] is None
