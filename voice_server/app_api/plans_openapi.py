"""The OpenAPI paths of what the plans sell (issue 22): spending answers and payout receipts. (`GET
/v1/events` is a Server-Sent Events stream, not JSON: it is described in voice_server/events_routes.py.)"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from voice_server.app_api.analytics import GROUPS, PERIODS, FiguresOut, GroupOut, SpendingOut
from voice_server.app_api.openapi_parts import op, path_id, query
from voice_server.app_api.receipt import Receipt, ReceiptTexts

PLANS_MODELS: list[type[BaseModel]] = [SpendingOut, FiguresOut, GroupOut, Receipt, ReceiptTexts]


def plans_paths() -> dict[str, Any]:
    number = {"type": "string", "pattern": "^[0-9]{5,7}$"}
    return {
        "/v1/analytics/spending": {
            "get": op(
                "What the user spent in a period (Africa/Nairobi time): total, fees, count, largest "
                "recipients and the change from the period before; plans with features.analytics (Pro and "
                "up), others 403 plan_required",
                (200, SpendingOut, "the figures"),
                errors=(400, 403, 404),
                params=[
                    query("period", {"type": "string", "enum": list(PERIODS)}, "default this_month"),
                    query("contact_id", {"type": "string", "format": "uuid"}, "one contact's payments"),
                    query("paybill", number, "one paybill's payments"),
                    query("till", number, "one till's payments"),
                    query("group_by", {"type": "string", "enum": list(GROUPS)}, "also list the groups"),
                ],
            )
        },
        "/v1/transactions/{id}/receipt": {
            "get": op(
                "A settled payout's receipt in English and Swahili, with M-Pesa's receipt code",
                (200, Receipt, "the receipt"),
                errors=(404, 409),
                params=[path_id("transaction id")],
            )
        },
    }
