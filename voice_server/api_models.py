"""The HTTP API's request and response bodies as pydantic models: handlers validate with them and
`/openapi.json` is generated from them, so the document cannot drift from the code."""

from __future__ import annotations

import uuid
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ledger.limits import MAX_TRANSACTION_KES, kes

MAX_TOPUP = MAX_TRANSACTION_KES  # ledger.limits: one transaction at most


class ErrorDetail(BaseModel):
    code: str = Field(description="stable, machine-readable reason, e.g. invalid_amount")
    message: str = Field(description="a sentence for people")


class ErrorResponse(BaseModel):
    error: ErrorDetail


class Health(BaseModel):
    status: Literal["ok", "unavailable"]
    database: Literal["ok", "unavailable"] = Field(description="the reason is logged, never answered")


class TopupRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    amount: Decimal = Field(
        description=f"whole shillings, 1 to {kes(MAX_TOPUP)}, as a number or a decimal string "
        "(M-Pesa moves no cents)",
        examples=["500", 500],
    )
    business_id: uuid.UUID | None = Field(
        default=None,
        description="top up this business wallet instead (its owner or an admin; the STK push goes to the "
        "owner's M-Pesa number, sql/0028)",
    )

    @field_validator("amount", mode="before")
    @classmethod
    def _whole_shillings(cls, value: Any) -> Decimal:
        # Floats, booleans and anything not plainly a number are refused rather than coerced.
        if isinstance(value, bool) or not isinstance(value, int | str | Decimal):
            raise ValueError("amount is a number or a decimal string")
        try:
            amount = Decimal(str(value).strip())
        except (InvalidOperation, ValueError) as exc:
            raise ValueError("amount is not a number") from exc
        if not amount.is_finite() or amount <= 0 or amount > MAX_TOPUP:
            raise ValueError(f"amount is from 1 to {kes(MAX_TOPUP)}")
        if amount != amount.to_integral_value():
            raise ValueError("amount is whole shillings")
        return amount.quantize(Decimal("0.01"))


class TopupResponse(BaseModel):
    topup_id: uuid.UUID
    checkout_request_id: str = Field(description="Daraja's CheckoutRequestID of the STK push")
    status: Literal["pending"] = Field(description="credited when M-Pesa's callback says the user paid")
    amount: str = Field(description="decimal string with two places", examples=["500.00"])
    phone: str = Field(description="the M-Pesa number the prompt went to, 2547XXXXXXXX")
    message: str


class DarajaAck(BaseModel):
    """What a Daraja callback gets back once it is durably recorded."""

    ResultCode: int = Field(description="0 accepted; 1 refused (an amount that differs from ours)")
    ResultDesc: str


class C2bValidationAnswer(BaseModel):
    """Our answer to Daraja's C2B validation: accept the deposit, or send the money back to the payer."""

    ResultCode: Literal["0", "C2B00011", "C2B00012", "C2B00013", "C2B00014", "C2B00015", "C2B00016"]
    ResultDesc: Literal["Accepted", "Rejected"]
