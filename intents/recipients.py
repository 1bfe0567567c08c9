"""Who or what the money goes to: a contact (never a guess: ambiguous names become candidates), a phone, a
biller's paybill, a till, a paybill, an agent and store, an account.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from intents import confidence as conf
from intents.billers import billers
from intents.contacts import AMBIGUOUS_MARGIN, CERTAIN_SCORE, Match
from intents.numbers import Chunk
from intents.phones import normalise_phone
from intents.slots import SlotReader, Slots


class RecipientReader(SlotReader):
    """Slots and name spans -> the recipient fields."""

    def _contact(self, spans: list[list[str]]) -> tuple[list[Match], bool, int] | None:
        """Best contact over every name span: (matches best first, certain?, words used)."""
        found: list[tuple[tuple[bool, int, float], list[Match], int]] = []
        if not len(self.index):
            return None
        for words in spans[:8]:
            best: tuple[tuple[bool, int, float], list[Match], int] | None = None
            for size in range(min(4, len(words)), 0, -1):
                for start in range(len(words) - size + 1):
                    matches = self.index.match(" ".join(words[start : start + size]))
                    if not matches:
                        continue
                    key = (matches[0].score >= CERTAIN_SCORE, size, matches[0].score)
                    if best is None or key > best[0]:
                        best = (key, matches, size)
            if best is not None and best[2] < len(words):
                # "Mary Wanjiru" when only "Mary Wambui" is saved: part of the name fits, part does not.
                # That may be someone else entirely, so this is a candidate to confirm, never a choice.
                (_, size, score), matches, used = best
                best = ((False, size, score), matches, used)
            if best is not None:
                found.append(best)
        if not found:
            return self._short_contact(spans)
        found.sort(key=lambda f: f[0], reverse=True)
        key, matches, size = found[0]
        others = {m.index for f in found[1:] for m in f[1][:1] if f[0][0]}
        if others - {matches[0].index}:
            self.ev.conflicts += 1  # two different people named
        top = matches[0].score
        rivals = [m for m in matches[1:] if m.score >= top - AMBIGUOUS_MARGIN]
        certain = key[0] and not rivals
        if not certain and len(spans) == 1 and len(spans[0]) == 1:
            # "njoro" is close to "Njoroge" and also its short form: the short form says who, to be read back.
            short = self.index.match_short(spans[0][0])
            if len(short) == 1 and short[0].index == matches[0].index:
                return short, True, 1
        return matches, certain, size

    def _short_contact(self, spans: list[list[str]]) -> tuple[list[Match], bool, int] | None:
        """No name fits: a short form of one ("Kevo", "Collo") may. One contact: use it, to be read back;
        several (two Brians for "Brayo"): ask which."""
        for words in spans[:8]:
            for w in words:
                matches = self.index.match_short(w)
                if matches:
                    return matches, len(matches) == 1, 1
        return None

    def _recipient(
        self,
        s: Slots,
        best: tuple[list[Match], bool, int] | None,
        out: dict[str, Any],
        missing: list[str],
        errors: list[str],
    ) -> None:
        ev, index = self.ev, self.index
        if s.phones:
            ch = s.phones[0]
            ev.conflicts += len(s.phones) - 1
            phone = normalise_phone(("+" if ch.plus else "") + ch.digits) if ch.digits else None
            if phone is None:
                errors.append("invalid_phone")
                return
            out["phone"] = phone
            if ch.spoken:
                ev.recipient *= 0.92 if ch.repeats else 0.95
            owner = index.by_phone.get(phone)
            if owner is not None:
                out["contact_id"] = index.contacts[owner].id
            if best is not None and (owner is None or best[0][0].index != owner):
                ev.conflicts += 1  # a name and a number that disagree
            return
        if s.bad_recipients:
            errors.append("invalid_phone")
            return
        if best is None:
            missing.append("recipient")
            return
        matches, certain, _ = best
        top = matches[0]
        if not certain:
            near = [m for m in matches if m.score >= min(top.score, CERTAIN_SCORE) - 2 * AMBIGUOUS_MARGIN]
            out["candidates"] = [index.contacts[m.index].id for m in near[:5]]
            missing.append("recipient")
            return
        contact = index.contacts[top.index]
        phone = index.phone_of[top.index]
        out["contact_id"] = contact.id
        if phone is None:
            errors.append("invalid_phone")
            return
        out["phone"] = phone
        if top.short:
            ev.recipient *= conf.SHORT_NAME  # "Kevo" for Kevin Otieno: likely, but the read-back decides
        elif top.score < 100:
            # Heard close to, not exactly, a saved name: probably a recogniser slip, but it could be
            # someone not in the contacts. Use it, and confirm before acting.
            ev.recipient *= max(0.0, min(0.8, 1 - (100 - top.score) * 0.02))
        if len(matches) > 1:
            ev.contact_lead = top.score - matches[1].score

    def _biller(self, s: Slots) -> None:
        """A named biller supplies its business number when we know it; a different number said is a clash."""
        numbers = {billers()[b].paybill_for(self.tokens) for b in dict.fromkeys(s.billers)}
        if len(numbers) > 1:
            self.ev.conflicts += 1  # two different companies named
        number = next(iter(numbers)) if len(numbers) == 1 else None
        if number is None:
            return
        if s.paybill:
            if any(ch.digits != number for ch in s.paybill):
                self.ev.conflicts += 1  # "pay DStv paybill 123456": the company and the number disagree
            return
        s.paybill.append(Chunk(0, 0, number, Decimal(number), False))

    def _guess_business(self, txn: str, s: Slots) -> None:
        """An unmarked business-sized number beside another amount is the till ("buy goods 832909 350").

        Inferred, not said: it costs a conflict, so the result is never confident.
        """
        slot = {"buy_goods_till": "till", "paybill": "paybill", "withdraw": "agent"}.get(txn)
        if slot is None or getattr(s, slot) or len(s.amounts) < 2:
            return
        guess = [a for a in s.amounts if not a[0].spoken and 5 <= len(a[0].digits) <= 7 and not a[1]]
        if guess:
            s.amounts.remove(guess[0])
            getattr(s, slot).append(guess[0][0])
            self.ev.conflicts += 1

    def _business(
        self,
        found: list[Chunk],
        slot: str,
        out: dict[str, Any],
        missing: list[str],
        errors: list[str],
        s: Slots,
    ) -> None:
        if not found:
            missing.append(slot)
            return
        self.ev.conflicts += len(found) - 1
        digits = found[0].digits
        if not (5 <= len(digits) <= 7):
            errors.append("invalid_number")
            return
        out[slot] = digits

    def _store(self, s: Slots, out: dict[str, Any], missing: list[str], errors: list[str]) -> None:
        if not s.store:
            missing.append("store")
            return
        digits = s.store[0].digits
        if not (1 <= len(digits) <= 7):
            errors.append("invalid_number")
            return
        out["store"] = digits

    def _account_slot(self, s: Slots, out: dict[str, Any], missing: list[str], errors: list[str]) -> None:
        if not s.accounts:
            missing.append("account")
            return
        self.ev.conflicts += len(s.accounts) - 1
        acc = s.accounts[0]
        if not (1 <= len(acc) <= 20):
            errors.append("invalid_number")
            return
        out["account"] = acc
