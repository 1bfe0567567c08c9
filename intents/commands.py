"""A payment command: its type (send, pochi, till, paybill, withdraw, bank), its amount, its slots, and the
evidence the confidence is made of (conflicts, unknown words, slips).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from itertools import pairwise
from typing import Any

from intents import confidence as conf
from intents.items import Item
from intents.limits import MAX_TRANSACTION_KES
from intents.models import ParseResult
from intents.non_commands import QuestionReader, to_someone
from intents.number_items import single_then_group
from intents.numbers import Chunk
from intents.phones import looks_like_phone
from intents.slots import Slots, name_spans, typed_intent

LIMIT = MAX_TRANSACTION_KES  # intents.limits: what one transaction may be at most


class CommandReader(QuestionReader):
    """Items -> a payment command with its slots filled, or the query it turned out to be."""

    def _command(self, items: list[Item]) -> ParseResult:
        """A payment command: its slots, its type, and how sure we are of each."""
        s = self.slots(items)
        roles = {it.role for it in items if it.kind == "role"}
        spans = name_spans(items)
        ev = self.ev
        ev.unknown = self.overflow + sum(len(sp) for sp in spans)
        if self.account_tail and not s.amounts and self.account_tail[0] in s.accounts:
            # "account 54321678 2000", "account 0123 456 789 1000": the last group is probably the amount
            # (a second number, or a round figure), but it may end the account: ask, never guess.
            full, last = self.account_tail
            s.accounts[s.accounts.index(full)] = full[: -len(last)]
            s.amounts.append((Chunk(0, 0, last, Decimal(last), False), False, False))
            ev.conflicts += 1
        elif self.account_tail and self.account_tail[0] in s.accounts:
            ev.conflicts += 1  # "5000 to equity 0170 2998 1134 1000": a second amount, or the account's end?
        for a, b in pairwise(items):
            if a.chunk and b.chunk and a.chunk.spoken and a.chunk.digits and b.chunk.toks:
                if b.chunk.toks[0].kind in ("tens", "teen"):
                    ev.conflicts += 1  # "... nine three fifty": 3 + 50 or 350? Ask.
            if self._unknown_beside_number(a, b) or self._unknown_beside_number(b, a):
                ev.conflicts += 1  # "tuma jiti nne": slang we do not know may multiply the four. Ask.
            if a.role in ("send", "pay") and b.role == "self":
                ev.conflicts += 1  # "John sent me 500", "send me 500": money to the speaker? Ask.
            if (
                a.chunk
                and b.chunk
                and not looks_like_phone(a.chunk.digits, a.chunk.plus)
                and single_then_group(a.text.split()[-1], b.text.split()[0])
            ):
                ev.conflicts += 1  # "till 5 6 7 8 9 0 1 500": till 5678901 and 500, or 567890 and 1,500?

        txn = self._type(items, roles, s)
        best = self._contact(spans) if txn in ("send_phone", "buy_goods_pochi", None) else None
        if (
            txn is None
            and best is not None
            and (((s.amounts or roles & {"to"}) and best[1]) or (s.amounts and "to" in roles))
        ):
            txn = "send_phone"  # "500 to John": no verb, but an amount and a known person
        if txn is None and s.amounts and to_someone(items):
            txn = "send_phone"  # "300 to Gabu": money to a person we do not know, so ask who
        if best is not None and txn in ("send_phone", "buy_goods_pochi"):
            ev.unknown -= best[2]
        recipientish = s.phones or s.bad_recipients or s.till or s.paybill or s.agent or s.store or s.accounts
        if (
            txn is not None
            and roles & {"balance", "history"}
            and not s.amounts
            and not recipientish
            and not best
        ):
            txn = None  # "nitumie statement": send me my statement, not a payment
        if "history" in roles and not s.amounts and not roles & {"send", "pay", "withdraw", "buy_goods"}:
            txn = None  # "show all payments to mama": the history with her, no verb that pays
        if txn is None:
            query = (
                "transaction_history"
                if "history" in roles
                else "check_balance"
                if "balance" in roles
                else None
            )
            return self._query(query)

        out: dict[str, Any] = {"text": self.text, "type": txn}
        missing: list[str] = []
        errors: list[str] = []
        self._guess_business(txn, s)
        self._amount(s, out, missing, errors)
        if txn in ("send_phone", "buy_goods_pochi"):
            self._recipient(s, best, out, missing, errors)
        else:
            ev.conflicts += len(s.phones) + len(s.bad_recipients)
        if txn == "buy_goods_till":
            self._business(s.till, "till", out, missing, errors, s)
        elif txn == "paybill":
            self._biller(s)
            self._business(s.paybill, "paybill", out, missing, errors, s)
            self._account_slot(s, out, missing, errors)
        elif txn == "withdraw":
            self._business(s.agent, "agent", out, missing, errors, s)
            self._store(s, out, missing, errors)
        elif txn in ("bank_to_mpesa", "mpesa_to_bank"):
            codes = list(dict.fromkeys(s.banks))
            if codes:
                out["bank_code"] = codes[0]
                ev.conflicts += len(codes) - 1
            else:
                missing.append("bank")
            if txn == "mpesa_to_bank":
                self._account_slot(s, out, missing, errors)
            elif s.accounts:
                out["account"] = s.accounts[0] if len(s.accounts[0]) <= 20 else ""
        if txn == "bank_to_mpesa" and "withdraw" in roles and "mpesa" not in roles:
            ev.conflicts += 1  # "withdraw 5000 from KCB": into M-Pesa, or cash at the bank? Ask.
        used = {"till": "buy_goods_till", "paybill": "paybill", "agent": "withdraw", "store": "withdraw"}
        ev.conflicts += sum(1 for k, t in used.items() if getattr(s, k) and t != txn)
        if s.accounts and txn not in ("paybill", "mpesa_to_bank", "bank_to_mpesa"):
            ev.conflicts += 1
        if s.banks and txn not in ("bank_to_mpesa", "mpesa_to_bank"):
            ev.conflicts += 1
        if roles & {"balance", "history"}:
            ev.conflicts += 1  # a query and a payment in one breath: confirm which one is meant
        if "negation" in roles:
            ev.conflicts += 2  # "don't send ...", "usitume ...": ask, never act
        out["missing"] = list(dict.fromkeys(missing))
        out["errors"] = list(dict.fromkeys(errors))
        intent = typed_intent(txn, out) if not out["missing"] and not out["errors"] else None
        actionable = intent is not None
        if not actionable and not out["missing"] and not out["errors"]:
            out["errors"] = ["invalid_number"]  # a slot failed the typed model's checks
        out["confidence"] = conf.score(ev, actionable=actionable)
        return ParseResult(**out, intent=intent, language=self.language)

    def _unknown_beside_number(self, word: Item, number: Item) -> bool:
        """A word we do not know right beside a number said in words (or one digit): it may be a money word
        ("jiti nne", "kiji tatu") that would change the amount, so the amount is never taken as heard."""
        ch = number.chunk
        if word.kind != "word" or ch is None or word.text in self.index.known_words:
            return False
        return ch.spoken or (ch.value is not None and ch.value < 10)

    def _type(self, items: list[Item], roles: set[str], s: Slots) -> str | None:
        bankish = bool(s.banks) or "bank" in roles
        if "paybill" in roles or s.billers:
            return "paybill"  # "pay my DStv", "lipa stima": a bill named by its company
        if bankish:
            direction = self._bank_direction(items)
            if direction:
                return direction
        if "till" in roles:
            return "buy_goods_till"
        if "pochi" in roles:
            return "buy_goods_pochi"
        if "buy_goods" in roles:
            return "buy_goods_till"
        if roles & {"withdraw", "agent", "store"}:
            return "withdraw"
        if roles & {"send", "pay"}:
            return "send_phone"
        if s.phones and s.amounts:
            return "send_phone"
        return None

    def _bank_direction(self, items: list[Item]) -> str | None:
        """From a bank into M-Pesa, or from M-Pesa into a bank."""
        from_bank = from_mpesa = to_mpesa = False
        for p, it in enumerate(items):
            if it.role == "from":
                q = p + 1
                while q < len(items) and items[q].role in ("filler", "number"):
                    q += 1
                if q < len(items) and (items[q].kind == "bank" or items[q].role == "bank"):
                    from_bank = True
                elif q < len(items) and items[q].role == "mpesa":
                    from_mpesa = True
            if it.role == "mpesa":
                to_mpesa = True
        if from_bank or (to_mpesa and not from_mpesa):
            return "bank_to_mpesa"
        roles = {it.role for it in items}
        if from_mpesa or roles & {"send", "pay", "to", "account"}:
            return "mpesa_to_bank"
        return None

    def _amount(self, s: Slots, out: dict[str, Any], missing: list[str], errors: list[str]) -> None:
        ev = self.ev
        amounts = s.amounts
        if not amounts:
            missing.append("amount")
            return
        if len(amounts) > 1:
            plain = [a for a in amounts if a[0].slip_value is None]
            if plain:
                if any(a[0].value is not None and a[0].value >= 100 for a in amounts if a not in plain):
                    ev.conflicts += 1  # "3 thousand 2 for hundred": "four hundred" too? Ask.
                amounts = plain
        if len(amounts) > 1:
            marked = [a for a in amounts if a[1]]
            if len(marked) == 1:
                amounts = marked
            ev.conflicts += 1
        ch, _, negative = amounts[0]
        value = ch.value
        if ch.slip_value is not None and len(s.amounts) == 1:
            value = ch.slip_value
            ev.amount *= 0.75  # "to thousand" may be "two thousand" or "a thousand": confirm
        if ch.digits and ch.end - ch.start == len(ch.digits) > 1:
            ev.amount *= 0.75  # "1 5" / "one five" as an amount: 15? 1.5? 1,500? Confirm.
        elif ch.spaced:
            ev.amount *= 0.95
        if ch.bad or value is None:
            errors.append("invalid_number")
            return
        if negative:
            value = -value
        out["amount"] = value
        if value <= 0:
            errors.append("amount_not_positive")
        elif value > LIMIT:
            errors.append("amount_above_limit")
        else:
            try:
                if value != value.quantize(Decimal("0.01")):
                    errors.append("invalid_number")
                    out["amount"] = None
            except InvalidOperation:
                errors.append("invalid_number")
                out["amount"] = None
