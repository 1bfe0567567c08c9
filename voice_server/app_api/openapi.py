"""The app API's part of `/openapi.json`, described with the same models the handlers validate with."""

from __future__ import annotations

from typing import Any, get_args

from pydantic import BaseModel

from voice_server.app_api.models import (
    APP_MODELS,
    BalanceHistoryPage,
    Contact,
    ContactCreate,
    ContactImport,
    ContactImportResult,
    ContactList,
    ContactPatch,
    PaymentMethod,
    PaymentMethodCreate,
    PaymentMethodList,
    PinChange,
    PinChanged,
    PlanList,
    Profile,
    ProfilePatch,
    StripeAck,
    Subscription,
    SubscriptionRequest,
    Topup,
    Transaction,
    TransactionPage,
    TransactionStatusName,
    TransactionTypeName,
)
from voice_server.app_api.openapi_parts import content as _content
from voice_server.app_api.openapi_parts import op as _op
from voice_server.app_api.openapi_parts import path_id as _id
from voice_server.app_api.openapi_parts import query as _query
from voice_server.app_api.plans_openapi import PLANS_MODELS, plans_paths

_BEFORE = _query("before", {"type": "string", "maxLength": 200}, "next_before of the previous page")


def app_api_paths() -> tuple[list[type[BaseModel]], dict[str, Any]]:
    """The models to put under components and the paths of the app API."""
    paths: dict[str, Any] = {
        "/v1/me": {
            "get": _op(
                "The user's profile, balances, plan and this month's usage",
                (200, Profile, "profile"),
                errors=(404,),
            ),
            "patch": _op(
                "Change preferences (auto top-up, default payment method, biometrics); others are refused",
                (200, Profile, "the profile after the change"),
                body=ProfilePatch,
                errors=(400, 404, 413),
            ),
        },
        "/v1/me/pin": {
            "put": _op(
                "Set the PIN (the first one within ONGEA_FIRST_PIN_SIGN_IN_SECONDS of signing in), or "
                "change it with the current one (wrong ones count towards the lockout)",
                (200, PinChanged, "PIN set"),
                body=PinChange,
                errors=(400, 403, 404, 409, 413, 423),
            )
        },
        "/v1/contacts": {
            "get": _op("The user's contacts, favourites first", (200, ContactList, "contacts")),
            "post": _op(
                "Save a contact (one per number)",
                (201, Contact, "saved"),
                body=ContactCreate,
                errors=(400, 409, 413),
            ),
        },
        "/v1/contacts:import": {
            "post": _op(
                "Import an address book: new Kenyan mobile numbers are saved, the rest skipped with reasons",
                (201, ContactImportResult, "what was imported and what was skipped"),
                body=ContactImport,
                errors=(400, 413),
            )
        },
        "/v1/contacts/{id}": {
            "get": _op("One contact", (200, Contact, "contact"), errors=(404,), params=[_id("contact id")]),
            "patch": _op(
                "Change a contact; null clears nickname, relationship and default_amount",
                (200, Contact, "the contact after the change"),
                body=ContactPatch,
                errors=(400, 404, 409, 413),
                params=[_id("contact id")],
            ),
            "delete": _op(
                "Delete a contact", (204, None, "deleted"), errors=(404,), params=[_id("contact id")]
            ),
        },
        "/v1/transactions": {
            "get": _op(
                "Transactions, newest first, a page at a time",
                (200, TransactionPage, "a page"),
                errors=(400,),
                params=[
                    _query(
                        "status",
                        {"type": "string", "enum": list(get_args(TransactionStatusName))},
                        "only this status",
                    ),
                    _query(
                        "type",
                        {"type": "string", "enum": list(get_args(TransactionTypeName))},
                        "only this type",
                    ),
                    _BEFORE,
                    _query(
                        "limit", {"type": "integer", "minimum": 1, "maximum": 100}, "page size (default 20)"
                    ),
                ],
            )
        },
        "/v1/transactions/{id}": {
            "get": _op(
                "One transaction",
                (200, Transaction, "transaction"),
                errors=(404,),
                params=[_id("transaction id")],
            )
        },
        "/v1/balance-history": {
            "get": _op(
                "Every change of the wallet balance, newest first",
                (200, BalanceHistoryPage, "a page"),
                errors=(400,),
                params=[
                    _BEFORE,
                    _query(
                        "limit", {"type": "integer", "minimum": 1, "maximum": 200}, "page size (default 50)"
                    ),
                ],
            )
        },
        "/v1/topups/{id}": {
            "get": _op(
                "A top-up: pending until M-Pesa's callback, then completed (credited) or failed",
                (200, Topup, "top-up"),
                errors=(404,),
                params=[_id("topup_id from POST /v1/topups")],
            )
        },
        "/v1/plans": {"get": _op("The subscription plans", (200, PlanList, "plans"))},
        "/v1/subscription": {
            "post": _op(
                "Change plan: in force at once for fees and limits (201 changed, 200 already on it); "
                "a paid plan is bought through Stripe billing (402 here)",
                (201, Subscription, "the subscription in force"),
                body=SubscriptionRequest,
                errors=(400, 402, 404, 409, 413),
            )
        },
        "/v1/webhooks/stripe": {
            "post": _op(
                "Stripe subscription events (Stripe-Signature checked; each event applied once)",
                (200, StripeAck, "received"),
                errors=(400, 413, 503),
                params=[
                    {
                        "name": "Stripe-Signature",
                        "in": "header",
                        "required": True,
                        "schema": {"type": "string"},
                    }
                ],
                secured=False,
            )
        },
        "/v1/payment-methods": {
            "get": _op(
                "Saved payment methods, the default first", (200, PaymentMethodList, "payment methods")
            ),
            "post": _op(
                "Save an M-Pesa number, a bank account or a card token (a card number is refused)",
                (201, PaymentMethod, "saved"),
                body=PaymentMethodCreate,
                errors=(400, 409, 413),
            ),
        },
        "/v1/payment-methods/{id}": {
            "delete": _op(
                "Delete a payment method",
                (204, None, "deleted"),
                errors=(404,),
                params=[_id("payment method id")],
            )
        },
    }
    # 200 for a plan already in force is an answer too.
    paths["/v1/subscription"]["post"]["responses"]["200"] = {
        "description": "already on this plan",
        "content": _content(Subscription),
    }
    paths.update(plans_paths())
    from voice_server.app_api.api_keys import API_KEY_MODELS, api_key_paths
    from voice_server.app_api.business import BUSINESS_MODELS, business_paths

    paths.update(api_key_paths())
    paths.update(business_paths())
    return [*APP_MODELS, *PLANS_MODELS, *API_KEY_MODELS, *BUSINESS_MODELS], paths
