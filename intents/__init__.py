"""Spoken payment commands -> typed M-Pesa transaction intents (see shared/spec/intents.md)."""

from intents.banks import bank_paybill
from intents.contacts import ContactIndex
from intents.models import (
    BankToMpesa,
    BuyGoodsPochi,
    BuyGoodsTill,
    CheckBalance,
    Contact,
    Intent,
    MpesaToBank,
    ParseResult,
    Paybill,
    SendPhone,
    SpendingSummary,
    TransactionHistory,
    Withdraw,
)
from intents.parser import parse

__all__ = [
    "BankToMpesa",
    "BuyGoodsPochi",
    "BuyGoodsTill",
    "CheckBalance",
    "Contact",
    "ContactIndex",
    "Intent",
    "MpesaToBank",
    "ParseResult",
    "Paybill",
    "SendPhone",
    "SpendingSummary",
    "TransactionHistory",
    "Withdraw",
    "bank_paybill",
    "parse",
]
