"""`GET /v1/transactions/{id}/receipt`: a settled payout's receipt, in English and Swahili, in the words the
conversation says it (voice_server/dialogue/receipt_words.py). Read under the user's row level security."""

from __future__ import annotations

import uuid

from aiohttp import web
from pydantic import BaseModel, Field

from voice_server.app_api.common import answer, path_id, user_db
from voice_server.dialogue.receipt_words import receipt_text
from voice_server.http_errors import ApiError
from voice_server.receipts import RECEIPT_COLUMNS, settled_of


class ReceiptTexts(BaseModel):
    en: str
    sw: str


class Receipt(BaseModel):
    transaction_id: uuid.UUID
    status: str = Field(description="completed or failed")
    reference: str = Field(description="M-Pesa's receipt code (empty for a payout M-Pesa refused)")
    text: ReceiptTexts


async def get_receipt(request: web.Request) -> web.Response:
    tx_id = path_id(request)
    async with user_db(request) as conn:
        row = await conn.fetchrow(f"SELECT {RECEIPT_COLUMNS} FROM transactions t WHERE t.id = $1", tx_id)
    if row is None:
        raise ApiError(404, "not_found", "no such transaction")
    if row["type"] == "bank_to_mpesa":
        raise ApiError(409, "not_a_payout", "a deposit from the bank has no payout receipt")
    if row["status"] not in ("completed", "failed"):
        raise ApiError(409, "not_settled", "M-Pesa has not settled this payment yet")
    settled = settled_of(row, spoken=True)
    texts = ReceiptTexts(en=receipt_text("en", settled), sw=receipt_text("sw", settled))
    return answer(
        Receipt(transaction_id=tx_id, status=row["status"], reference=settled.reference, text=texts)
    )


def setup(app: web.Application) -> None:
    app.router.add_get("/v1/transactions/{id}/receipt", get_receipt)
