"""Request and response bodies of the app's API. Handlers validate with these models and `/openapi.json` is
generated from them, so the document and the code cannot drift apart.

Request models forbid unknown fields: a `PATCH /v1/me` carrying `wallet_balance` or `pin_hash` is refused
outright instead of being silently dropped. Amounts go out as decimal strings with two places."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    RootModel,
    StrictBool,
    StrictStr,
    field_validator,
)
from pydantic.json_schema import SkipJsonSchema
from pydantic_core import PydanticCustomError

from ledger.limits import MAX_TRANSACTION_KES, kes
from ledger.pins import weak_pin_reason

PlanId = Literal["free", "basic", "pro", "business"]
TransactionTypeName = Literal[
    "send_phone", "buy_goods_pochi", "buy_goods_till", "paybill", "withdraw", "bank_to_mpesa", "mpesa_to_bank"
]
TransactionStatusName = Literal["pending", "processing", "completed", "failed", "cancelled"]
# One payment, payout or top-up at most (ledger.limits: the same number the ledger refuses above).
MAX_PAYMENT = MAX_TRANSACTION_KES
_FROM_1_TO_MAX = f"an amount is from 1 to {kes(MAX_TRANSACTION_KES)} shillings"

_FORBID = ConfigDict(extra="forbid")


def api_error(code: str, message: str) -> PydanticCustomError:
    """A validation error whose code the API answers with (instead of the generic `invalid_request`)."""
    return PydanticCustomError(code, message, {"api": True})


def parse_amount(value: Any, *, whole: bool = False, allow_zero: bool = False) -> Decimal:
    """A payable amount: an int, a decimal string or a JSON number read as Decimal; never a float or bool."""
    if isinstance(value, bool) or not isinstance(value, int | str | Decimal):
        raise api_error("invalid_amount", 'an amount is a number or a decimal string such as "500"')
    try:
        amount = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise api_error("invalid_amount", "the amount is not a number") from None
    if not amount.is_finite():  # before any comparison: comparing a Decimal NaN raises, it is no answer
        raise api_error("invalid_amount", _FROM_1_TO_MAX)
    low_ok = amount >= 0 if allow_zero else amount > 0
    if not low_ok or amount > MAX_PAYMENT:
        raise api_error("invalid_amount", _FROM_1_TO_MAX)
    if amount != amount.quantize(Decimal("0.01")):
        raise api_error("invalid_amount", "an amount has at most two decimal places")
    if whole and amount != amount.to_integral_value():
        raise api_error("invalid_amount", "M-Pesa moves whole shillings only")
    return amount.quantize(Decimal("0.01"))


_JOINERS = "\u200c\u200d"


def clean_text(value: str | None, field: str, max_len: int, *, required: bool = False) -> str | None:
    if value is None:
        return None
    # No control characters (NUL would not even fit in PostgreSQL text), direction overrides, tabs or runs of
    # spaces; but the zero-width (non-)joiners that emoji and Indic and Arabic scripts are written with stay.
    text = " ".join("".join(ch if ch.isprintable() or ch in _JOINERS else " " for ch in value).split())
    text = text.strip(_JOINERS + " ")
    if not text:
        if required:
            raise api_error("invalid_text", f"{field} is empty")
        return None
    if len(text) > max_len:
        raise api_error("invalid_text", f"{field} is at most {max_len} characters")
    return text


# --------------------------------------------------------------------------------------------------------
# Profile, PIN, plans
# --------------------------------------------------------------------------------------------------------


class Plan(BaseModel):
    id: PlanId
    name: str
    monthly_fee: str = Field(description="KES a month, decimal string", examples=["99.00"])
    transaction_fee_percentage: str = Field(description="fee per payment as a fraction: 0.0100 = 1%")
    monthly_transaction_limit: int | None = Field(description="payments a month; null = unlimited")
    features: dict[str, Any]


class PlanList(BaseModel):
    items: list[Plan]


class Subscription(BaseModel):
    plan: PlanId
    status: Literal["active", "cancelled", "expired", "past_due"]
    transaction_fee_percentage: str
    monthly_transaction_limit: int | None
    current_period_start: datetime | None
    current_period_end: datetime | None
    cancel_at: datetime | None
    managed_by_stripe: bool = Field(description="changed through Stripe billing, not POST /v1/subscription")


class SubscriptionRequest(BaseModel):
    model_config = _FORBID
    plan: PlanId


class Usage(BaseModel):
    month: str = Field(description="calendar month in Nairobi time, YYYY-MM", examples=["2026-11"])
    transactions: int = Field(description="payments that reached processing this month")
    limit: int | None = Field(description="the plan's monthly limit; null = unlimited")
    remaining: int | None


class Profile(BaseModel):
    id: uuid.UUID
    phone: str = Field(description="2547XXXXXXXX")
    mpesa_number: str | None = Field(description="where top-ups are asked from, 2547XXXXXXXX")
    wallet_balance: str
    held_balance: str = Field(description="held by proposals waiting for a yes")
    available_balance: str = Field(description="wallet_balance - held_balance: what a payment may use")
    mpesa_auto_topup: bool
    mpesa_auto_topup_threshold: str | None
    mpesa_auto_topup_amount: str | None
    card_auto_topup: bool
    default_payment_method: Literal["wallet", "mpesa", "card"]
    default_payment_method_id: uuid.UUID | None = Field(description="the saved payment method marked default")
    biometric_enabled: bool
    pin_set: bool
    pin_locked_until: datetime | None = Field(description="PIN payments and PIN changes refused until then")
    plan: Subscription
    usage: Usage
    created_at: datetime | None


class ProfilePatch(BaseModel):
    """The preferences a user may change; anything else (balances, PIN hash, phone) is refused."""

    model_config = _FORBID

    mpesa_auto_topup: StrictBool | SkipJsonSchema[None] = None
    mpesa_auto_topup_threshold: Decimal | SkipJsonSchema[None] = Field(
        default=None, description="KES: an auto top-up starts when a payment leaves less than this"
    )
    mpesa_auto_topup_amount: Decimal | SkipJsonSchema[None] = Field(
        default=None, description=f"KES, whole shillings, 1 to {kes(MAX_TRANSACTION_KES)}"
    )
    card_auto_topup: StrictBool | SkipJsonSchema[None] = None
    default_payment_method: Literal["wallet", "mpesa", "card"] | SkipJsonSchema[None] = None
    biometric_enabled: StrictBool | SkipJsonSchema[None] = None

    @field_validator("mpesa_auto_topup_threshold", mode="before")
    @classmethod
    def _threshold(cls, value: Any) -> Decimal | None:
        return None if value is None else parse_amount(value, allow_zero=True)

    @field_validator("mpesa_auto_topup_amount", mode="before")
    @classmethod
    def _amount(cls, value: Any) -> Decimal | None:
        return None if value is None else parse_amount(value, whole=True)


_PIN_PATTERN = r"^[0-9]{4,6}$"


class PinChange(BaseModel):
    model_config = _FORBID

    pin: StrictStr = Field(
        description="the new PIN: 4 to 6 digits, not one digit repeated, not a run, not a block repeated"
    )
    current_pin: StrictStr | SkipJsonSchema[None] = Field(
        default=None, description="needed when a PIN is already set; wrong ones count towards the lockout"
    )

    @field_validator("pin")
    @classmethod
    def _new_pin(cls, value: str) -> str:
        if not (4 <= len(value) <= 6 and value.isascii() and value.isdigit()):
            raise api_error("invalid_pin", "a PIN is 4 to 6 digits")
        reason = weak_pin_reason(value)
        if reason:
            raise api_error("weak_pin", reason)
        return value

    @field_validator("current_pin")
    @classmethod
    def _current_pin(cls, value: str | None) -> str | None:
        if value is not None and len(value) > 32:
            raise api_error("invalid_pin", "a PIN is 4 to 6 digits")
        return value


class PinChanged(BaseModel):
    pin_set: Literal[True]
    message: str


# --------------------------------------------------------------------------------------------------------
# Contacts
# --------------------------------------------------------------------------------------------------------


class Contact(BaseModel):
    id: uuid.UUID
    name: str
    phone: str = Field(description="2547XXXXXXXX or 2541XXXXXXXX")
    nickname: str | None
    relationship: str | None
    default_amount: str | None
    favorite: bool
    transaction_count: int = Field(description="completed payments to this number")
    total_sent: str = Field(description="KES sent to this number in completed payments")
    created_at: datetime | None
    updated_at: datetime | None


class ContactList(BaseModel):
    items: list[Contact]


class _ContactFields(BaseModel):
    @field_validator("name", mode="after", check_fields=False)
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        return clean_text(value, "name", 100, required=True)

    @field_validator("nickname", mode="after", check_fields=False)
    @classmethod
    def _nickname(cls, value: str | None) -> str | None:
        return clean_text(value, "nickname", 100)

    @field_validator("relationship", mode="after", check_fields=False)
    @classmethod
    def _relationship(cls, value: str | None) -> str | None:
        return clean_text(value, "relationship", 50)

    @field_validator("default_amount", mode="before", check_fields=False)
    @classmethod
    def _default_amount(cls, value: Any) -> Decimal | None:
        return None if value is None else parse_amount(value)


class ContactCreate(_ContactFields):
    model_config = _FORBID

    name: StrictStr = Field(max_length=400)
    phone: StrictStr = Field(max_length=64, description="a Kenyan mobile number in any usual form")
    nickname: Annotated[StrictStr, Field(max_length=400)] | None = None
    relationship: Annotated[StrictStr, Field(max_length=200)] | None = None
    default_amount: Decimal | None = None
    favorite: StrictBool = False


class ContactPatch(_ContactFields):
    """Fields left out stay as they are; `null` clears nickname, relationship and default_amount."""

    model_config = _FORBID

    name: Annotated[StrictStr, Field(max_length=400)] | SkipJsonSchema[None] = None
    phone: Annotated[StrictStr, Field(max_length=64)] | SkipJsonSchema[None] = None
    nickname: Annotated[StrictStr, Field(max_length=400)] | None = None
    relationship: Annotated[StrictStr, Field(max_length=200)] | None = None
    default_amount: Decimal | None = None
    favorite: StrictBool | SkipJsonSchema[None] = None


class ContactImportEntry(BaseModel):
    """One address-book entry as a phone exports it; other fields (emails, photos...) are ignored."""

    model_config = ConfigDict(extra="ignore")

    name: StrictStr = Field(default="", max_length=1000)
    phone: StrictStr = Field(default="", max_length=200)
    nickname: Annotated[StrictStr, Field(max_length=1000)] | None = None
    relationship: Annotated[StrictStr, Field(max_length=1000)] | None = None


MAX_IMPORT = 5000


class ContactImport(BaseModel):
    model_config = _FORBID
    contacts: list[ContactImportEntry] = Field(max_length=MAX_IMPORT)


class ImportSkip(BaseModel):
    index: int = Field(description="position of the entry in the request")
    name: str
    phone: str
    reason: Literal["invalid_name", "invalid_phone", "foreign_number", "duplicate", "already_saved"]
    message: str


class ContactImportResult(BaseModel):
    imported: list[Contact]
    skipped: list[ImportSkip]


# --------------------------------------------------------------------------------------------------------
# History
# --------------------------------------------------------------------------------------------------------


class Transaction(BaseModel):
    id: uuid.UUID
    type: TransactionTypeName
    status: TransactionStatusName
    amount: str
    fee: str
    phone: str
    till: str
    paybill: str
    account: str
    agent: str
    store: str
    bank_code: str
    mpesa_receipt: str = Field(description="M-Pesa's receipt once completed, else empty")
    reference: str = Field(
        default="",
        description="The reference shown to people: M-Pesa's receipt code once there is one (else empty)",
    )
    error_message: str | None
    voice_verified: bool
    created_at: datetime
    confirmed_at: datetime | None
    completed_at: datetime | None


class TransactionPage(BaseModel):
    items: list[Transaction]
    next_before: str | None = Field(description="pass as `before` for the next (older) page; null at the end")


class BalanceEntry(BaseModel):
    id: uuid.UUID
    transaction_id: uuid.UUID | None
    topup_id: uuid.UUID | None
    previous_balance: str
    new_balance: str
    change_amount: str
    reason: str
    created_at: datetime | None


class BalanceHistoryPage(BaseModel):
    items: list[BalanceEntry]
    next_before: str | None


class Topup(BaseModel):
    id: uuid.UUID
    kind: Literal["topup", "auto_topup"]
    status: Literal["pending", "completed", "failed"]
    amount: str
    phone: str
    mpesa_receipt: str | None
    error_message: str | None
    created_at: datetime | None
    completed_at: datetime | None


# --------------------------------------------------------------------------------------------------------
# Payment methods
# --------------------------------------------------------------------------------------------------------


class MpesaMethodCreate(BaseModel):
    model_config = _FORBID
    type: Literal["mpesa"]
    phone: StrictStr = Field(max_length=64, description="a Kenyan mobile number")
    is_default: StrictBool = False


class BankMethodCreate(BaseModel):
    model_config = _FORBID
    type: Literal["bank"]
    bank_code: StrictStr = Field(max_length=8, description="CBK bank code from the bank directory, e.g. 68")
    account_number: StrictStr = Field(max_length=64, description="1 to 20 letters and digits")
    is_default: StrictBool = False


class CardMethodCreate(BaseModel):
    """A card saved with the payment provider: only its token, last four digits and brand reach us."""

    model_config = _FORBID
    type: Literal["card"]
    token: StrictStr = Field(
        pattern=r"^[A-Za-z][A-Za-z0-9_\-]{5,254}$", description="the provider's token, e.g. pm_1Nabc..."
    )
    last4: StrictStr = Field(pattern=r"^[0-9]{4}$")
    brand: Literal["visa", "mastercard", "amex", "discover", "diners", "jcb", "unionpay", "unknown"]
    is_default: StrictBool = False


class PaymentMethodCreate(RootModel[MpesaMethodCreate | BankMethodCreate | CardMethodCreate]):
    root: Annotated[MpesaMethodCreate | BankMethodCreate | CardMethodCreate, Field(discriminator="type")]


class PaymentMethod(BaseModel):
    id: uuid.UUID
    type: Literal["mpesa", "bank", "card"]
    is_default: bool
    mpesa_number: str | None
    bank_code: str | None
    bank_name: str | None
    account_number: str | None
    card_last4: str | None
    card_brand: str | None
    created_at: datetime | None


class PaymentMethodList(BaseModel):
    items: list[PaymentMethod]


class StripeAck(BaseModel):
    received: Literal[True]
    outcome: str = Field(description="applied, duplicate (already applied) or ignored (nothing to change)")


APP_MODELS: list[type[BaseModel]] = [
    Plan,
    PlanList,
    Subscription,
    SubscriptionRequest,
    Usage,
    Profile,
    ProfilePatch,
    PinChange,
    PinChanged,
    Contact,
    ContactList,
    ContactCreate,
    ContactPatch,
    ContactImportEntry,
    ContactImport,
    ImportSkip,
    ContactImportResult,
    Transaction,
    TransactionPage,
    BalanceEntry,
    BalanceHistoryPage,
    Topup,
    MpesaMethodCreate,
    BankMethodCreate,
    CardMethodCreate,
    PaymentMethodCreate,
    PaymentMethod,
    PaymentMethodList,
    StripeAck,
]
