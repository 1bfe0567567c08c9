"""A settled payout's receipt as it is said and shown: "Done: KES 500 to Mama, M-Pesa receipt QKX7..., fee 5,
balance 4,495", or the refund of one M-Pesa refused. Pure: the dialogue says it, `GET
/v1/transactions/{id}/receipt` returns it in both languages."""

from __future__ import annotations

from decimal import Decimal

from intents.banks import bank_name
from voice_server.dialogue.events import PayoutSettled
from voice_server.dialogue.wording import Language, line, money, spoken_phone


def figure(language: Language, amount: Decimal) -> str:
    """A figure after a word that already says it is money ("fee 5", "balance 4,495"); in Swahili the
    amount as words, as everywhere else."""
    if language == "sw":
        return money(language, amount)
    amount = Decimal(amount).quantize(Decimal("0.01"))
    shillings, cents = int(amount), int((amount - int(amount)) * 100)
    return f"{shillings:,}" + (f".{cents:02d}" if cents else "")


def recipient_words(language: Language, r: PayoutSettled) -> str:
    name = r.recipient_name or spoken_phone(r.phone)
    return line(
        language,
        f"receipt.to.{r.type}",
        name=name,
        till=r.till,
        paybill=r.paybill,
        account=r.account,
        agent=r.agent,
        bank=bank_name(r.bank_code) or r.bank_code,
    )


def receipt_text(language: Language, r: PayoutSettled) -> str:
    common = {
        "amount": money(language, r.amount),
        "recipient": recipient_words(language, r),
        "balance": figure(language, r.balance),
    }
    prefix = f"{r.wallet_name}: " if r.wallet_name else ""  # white label (sql/0028)
    if r.status in ("rejected", "expired"):  # a business payment that was never approved
        return prefix + line(language, "receipt." + r.status, **common)
    if r.status == "failed":
        return prefix + line(language, "receipt.failed", refund=money(language, r.amount + r.fee), **common)
    key = "receipt.completed" if r.reference else "receipt.completed_no_reference"
    return prefix + line(language, key, reference=r.reference, fee=figure(language, r.fee), **common)
