"""From one transcribed utterance to a typed intent:
tokens -> items -> self-corrections -> not-a-command check -> slots -> type -> result.

Pure: no I/O here. Vocabulary, banks, billers, short names and language words are data
(`intents/data/*.yaml`) read once at import.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from itertools import pairwise
from typing import Any

from pydantic import TypeAdapter, ValidationError

from intents import confidence as conf
from intents.billers import billers
from intents.contacts import AMBIGUOUS_MARGIN, CERTAIN_SCORE, ContactIndex, Match
from intents.corrections import apply_corrections
from intents.items import SKIP_ROLES, SLOT_ROLES, Item, is_phone, marker
from intents.language import language_of
from intents.models import Contact, Intent, ParseResult
from intents.numbers import Chunk, NumTok, classify, is_number_word, split_run, with_slip
from intents.phones import looks_like_phone, normalise_phone
from intents.tokens import tokenize_words
from intents.vocabulary import vocabulary

LIMIT = Decimal(250_000)
# Longer input is not one spoken command; only this many tokens are read, the rest count as not understood.
MAX_TOKENS = 60
MAX_CHARS = 2000
_ACCOUNT_TOKEN = re.compile(r"^[a-z0-9]+$")
_RAW_AMOUNT = re.compile(r"^\d[\d,]*(?:\.\d+)?k?$")
# Currency marks the tokenizer splits off glued digits ("ksh1500"); inside an account they are letters.
_GLUED_CURRENCY = frozenset({"kshs", "ksh", "kes", "shs", "sh"})

_VOCAB = vocabulary()
_WORDS = _VOCAB.numbers
# Words that spell a digit string ("double oh seven ..."), as a business number said in groups may be.
_SPELLED_DIGIT = frozenset(_WORDS.digits) | frozenset(_WORDS.repeaters) | _WORDS.zero_in_digits


@dataclass
class Slots:
    amounts: list[tuple[Chunk, bool, bool]] = field(default_factory=list)  # chunk, marked, negative
    phones: list[Chunk] = field(default_factory=list)
    bad_recipients: list[Chunk] = field(default_factory=list)
    till: list[Chunk] = field(default_factory=list)
    paybill: list[Chunk] = field(default_factory=list)
    agent: list[Chunk] = field(default_factory=list)
    store: list[Chunk] = field(default_factory=list)
    accounts: list[str] = field(default_factory=list)
    banks: list[str] = field(default_factory=list)
    billers: list[int] = field(default_factory=list)


def parse(
    text: str,
    contacts: ContactIndex | Iterable[Contact | Mapping[str, Any]] = (),
    *,
    asr_confidence: float | None = None,
) -> ParseResult:
    """Understand one utterance. Pass a prebuilt `ContactIndex` when parsing many against one contact list."""
    index = contacts if isinstance(contacts, ContactIndex) else ContactIndex(contacts)
    return _Parse(text, index, _asr(asr_confidence)).run()


def _asr(value: float | None) -> float | None:
    """Accept 0..1 (or a percentage 1..100) from the recogniser."""
    if value is None:
        return None
    v = float(value)
    if v != v:  # NaN: no information
        return 0.0
    return v / 100 if v > 1 else max(0.0, v)


class _Parse:
    def __init__(self, text: str, index: ContactIndex, asr: float | None) -> None:
        self.text = text
        self.index = index
        tokens = _split_number_hyphens(tokenize_words(text[:MAX_CHARS]))
        self.overflow = max(0, len(tokens) - MAX_TOKENS) + (len(text) > MAX_CHARS)
        self.tokens = tokens[:MAX_TOKENS]
        self.folded = text[:MAX_CHARS].lower()
        self.ev = conf.Evidence(tokens=len(tokens), asr=asr)
        self.language = language_of(self.tokens)
        # The last group of an account said in groups, which may be the amount instead ("0123 456 789 1000").
        self.account_tail: tuple[str, str] | None = None

    # ------------------------------------------------------------------------------------------ items
    def items(self) -> list[Item]:
        toks, n, i = self.tokens, len(self.tokens), 0
        out: list[Item] = []
        account_mode = False
        group_mode = ""  # the business slot whose number may follow, said in groups
        while i < n:
            if group_mode and (toks[i].isdigit() or toks[i] in _SPELLED_DIGIT):
                slot, group_mode = group_mode, ""
                amount_before = _amount_said(out)
                joined, j = self._business_groups(i, slot, amount_before)
                if joined:
                    tok = NumTok("raw", joined, value=Decimal(joined), digits=joined)
                    out.append(Item("num", joined, num=tok, size=j - i, whole=True))
                    i = j
                    continue
            if account_mode:
                j = i
                while (
                    j < n
                    and self._role_at(j) in ("number", "filler")
                    and toks[j] not in ("a",)
                    and not (toks[j] in _WORDS.zero_in_digits and classify(_WORDS, toks, j, False))
                ):
                    out.append(Item("role", toks[j], role=self._role_at(j) or ""))
                    j += 1
                account_mode = False
                if j < n and self._phrase(j)[0].startswith("bank:"):
                    i = j  # "akaunti yangu ya I and M namba ...": the bank's name, the number comes later
                    continue
                acc, j2 = self._account(j)
                if acc:
                    out.append(Item("account", acc, size=j2 - j))
                i = j2
                continue
            prev_num = bool(out) and out[-1].kind == "num"
            nt = classify(_WORDS, toks, i, prev_num)
            if nt is not None and self._name_not_number(out, i):
                nt = None
            if nt is not None:
                out.append(Item("num", toks[i], num=nt))
                i += 1
                continue
            role, size = self._phrase(i)
            if role == "filler" and size == 1 and toks[i] in self.index.known_words:
                role = ""  # a contact really called "Boss" or "Sasa": let the name matcher have the word
            if role.startswith("bank:"):
                out.append(Item("bank", role[5:], size=size))
            elif role.startswith("biller:"):
                out.append(Item("biller", role[7:], size=size))
            elif role:
                out.append(Item("role", " ".join(toks[i : i + size]), role=role, size=size))
                account_mode = role == "account"
                if role in ("till", "paybill", "agent", "store"):
                    group_mode = role
                elif role not in SKIP_ROLES:
                    group_mode = ""
            else:
                out.append(Item("word", toks[i]))
            i += size
        return self._chunks(out)

    def _business_groups(self, i: int, slot: str, amount_before: bool) -> tuple[str, int]:
        """A till, paybill, agent or store number said in groups ("55 44 33", "12-34-56", "94 seven four")
        is one number.

        Groups join until an amount marker, a currency word, another slot or the end. When the amount may be
        among the groups ("till 12345 67 500": till 1234567 and 500, or 12345 and 67,500?) the reading is
        a question, never a guess. Returns ("", i) when the groups are not a business number.
        """
        toks, n = self.tokens, len(self.tokens)
        groups: list[str] = []
        starts: list[int] = []
        j = i
        while j < n:
            t = toks[j]
            nxt = toks[j + 1] if j + 1 < n else ""
            counted = nxt in _WORDS.after and not self._leads_count(j + 1)  # "0 thao mbili": thao leads
            if counted or nxt in _WORDS.point or nxt in _WORDS.tens or nxt in _WORDS.teens:
                break  # "... five hundred", "... 2 thousand": the amount starts here
            if t.isdigit():
                group, step = t, 1
            elif t in _WORDS.digits:
                group, step = str(_WORDS.digits[t]), 1
            elif t in _WORDS.zero_in_digits and (groups or nxt in _WORDS.digits):
                group, step = "0", 1
            elif t in _WORDS.repeaters and (nxt in _WORDS.digits or nxt in _WORDS.zero_in_digits):
                group, step = str(_WORDS.digits.get(nxt, 0)) * _WORDS.repeaters[t], 2
            else:
                break
            if t.isdigit() and groups and self._money_follows(j):
                break  # "... 33 500 bob": 500 is the amount
            groups.append(group)
            starts.append(j)
            j += step
            if t.isdigit() and self._money_follows(j - 1):
                break  # "till 554433 ksh 500"
        low, high = (1, 7) if slot == "store" else (5, 7)
        if len(groups) < 2:
            # One whole number ("till 254700 100 bob"): kept apart so it never joins the amount as a phone.
            alone = groups and low <= len(groups[0]) <= high and toks[i].isdigit()
            return (groups[0], j) if alone else ("", i)
        nxt_role = self._phrase(j)[0] if j < n else ""
        whole = "".join(groups)
        amount_next = j < n and is_number_word(_WORDS, toks[j])
        if low <= len(whole) <= high and (
            amount_before
            or amount_next
            or nxt_role not in ("", "filler", "self")  # "till 34 396 46, pay ksh 600": more follows
        ):
            return whole, j  # the amount is said elsewhere: every group is the number
        choices: list[int] = []
        for k in range(1, len(groups) + 1):
            number, rest = "".join(groups[:k]), groups[k:]
            written = all(toks[x].isdigit() for x in starts[k:])  # an amount is never spelled digit by digit
            if low <= len(number) <= high and (not rest or (written and _amount_groups(rest))):
                choices.append(k)
        if not choices:
            written = all(toks[x] == g for g, x in zip(groups, starts, strict=True))
            return ("", i) if written else (whole, j)  # written groups: the number reader decides
        with_amount = [k for k in choices if k < len(groups)]
        k = with_amount[0] if with_amount else choices[-1]
        if len(choices) > 1:
            self.ev.conflicts += 1  # "till 12345 67 500": till 1234567 and 500, or 12345 and 67,500? Ask.
        elif 2 <= k < len(groups) and len(groups[k]) == len(groups[k - 1]) == len(groups[k - 2]):
            self.ev.conflicts += 1  # "till 12 34 56 78": the pattern goes on, so 78 may be a misheard digit
        return "".join(groups[:k]), starts[k] if k < len(groups) else j

    def _name_not_number(self, out: list[Item], i: int) -> bool:
        """A number word that is a contact's name: said with the rest of the name ("Tatu Mwangi"), or
        alone right after to/kwa ("kwa Tatu")."""
        toks = self.tokens
        if toks[i] not in self.index.known_words:
            return False
        nxt = toks[i + 1] if i + 1 < len(toks) else ""
        prev = toks[i - 1] if i > 0 and out and out[-1].kind == "word" else ""
        if f"{toks[i]} {nxt}" in self.index.exact or f"{prev} {toks[i]}" in self.index.exact:
            if out and out[-1].kind == "num":
                self.ev.conflicts += 1  # "elfu tatu mwangi": 1,000 to Tatu Mwangi or 3,000 to Mwangi? Ask.
            return True
        q = len(out) - 1
        while q >= 0 and out[q].role == "filler":
            q -= 1  # "kwa simu ya Tatu": Tatu's phone
        if q < 0 or out[q].role != "to":
            return False
        return not is_number_word(_WORDS, nxt) and nxt not in _WORDS.joiners

    def _role_at(self, i: int) -> str | None:
        role, size = self._phrase(i)
        return role if size == 1 and role else None

    def _phrase(self, i: int) -> tuple[str, int]:
        toks = self.tokens
        for phrase, role in _VOCAB.phrases.get(toks[i], ()):
            if tuple(toks[i : i + len(phrase)]) == phrase:
                return role, len(phrase)
        return "", 1

    def _leads_count(self, i: int) -> bool:
        """A Sheng multiplier said before its count ("mbao tatu", "thao 2"): it starts a number."""
        toks = self.tokens
        if i + 1 >= len(toks) or toks[i] not in _WORDS.before:
            return False
        nxt = toks[i + 1]
        return nxt in _WORDS.digits or nxt in _WORDS.tens or nxt in _WORDS.teens or nxt.isdigit()

    def _account(self, i: int) -> tuple[str, int]:
        """Account numbers: digits, spelled digits and single letters ("a b c one two three" -> ABC123).

        Written digit groups belong together ("0123 456 789") until an amount marker, a currency word, a
        multiplier ("5 hundred") or another slot; whether the last group was the amount is decided later.
        """
        toks, n, j = self.tokens, len(self.tokens), i
        parts: list[tuple[str, bool]] = []  # (text, a written digit group?)
        while j < n:
            t = toks[j]
            nxt = toks[j + 1] if j + 1 < n else ""
            number_start = t in _WORDS.digits or t.isdigit() or (t in _WORDS.article and nxt != "k")
            counted = nxt in _WORDS.point or (nxt in _WORDS.after and not self._leads_count(j + 1))
            if counted and number_start:
                break  # "... five hundred", "... a thousand": the amount starts here ("r w k": letters)
            if parts and t.isdigit() and self._money_follows(j):
                break  # "... 500 bob": a written number then a currency word is the amount
            if len(t) == 1 and (self._phrase(j)[1] > 1 or self._role_at(j) == "correction"):
                break  # "..., i mean, account 8463": a phrase, not the letter I
            glued = not parts and t in _GLUED_CURRENCY and nxt.isdigit()
            if glued and re.search(rf"\b{t}{nxt}\b", self.folded):
                parts.append((t.upper() + nxt, False))  # "account SH83790": letters that look like a currency
                j += 2
                continue
            if t in _WORDS.digits:
                parts.append((str(_WORDS.digits[t]), False))
            elif t in _WORDS.zero_in_digits and (parts or nxt in _WORDS.digits or nxt in _WORDS.repeaters):
                parts.append(("0", False))  # "account oh nine eight ...": the leading zero counts
            elif t in _WORDS.repeaters and (nxt in _WORDS.digits or nxt in _WORDS.zero_in_digits):
                digit = str(_WORDS.digits.get(nxt, 0))  # "double oh" is 00
                parts.append((digit * _WORDS.repeaters[t], False))
                j += 2
                continue
            elif _ACCOUNT_TOKEN.match(t.replace("-", "")) and (len(t) == 1 or any(c.isdigit() for c in t)):
                t = t.replace("-", "")  # "ABC-123" is ABC123
                if t.endswith("k") and t[:-1].isdigit():
                    break  # "5k" is an amount
                parts.append((t.upper(), t.isdigit()))
            else:
                break
            j += 1
        if parts and _single_then_group(toks[j - 1], toks[j] if j < n else ""):
            self.ev.conflicts += 1  # "akaunti ... 1 500": the 1 ends the account or starts "1 500"? Ask.
        account = "".join(p for p, _ in parts)
        tail = _account_tail(parts)
        if tail:
            self.account_tail = (account, tail)
        return account, j

    def _money_follows(self, j: int) -> bool:
        """A currency word right after toks[j] that does not introduce a number of its own ("500 bob")."""
        toks, n = self.tokens, len(self.tokens)
        if j + 1 >= n or self._role_at(j + 1) != "currency":
            return False
        after = toks[j + 2] if j + 2 < n else ""
        return not (after.isdigit() or is_number_word(_WORDS, after) or _RAW_AMOUNT.match(after))

    def _chunks(self, items: list[Item]) -> list[Item]:
        out: list[Item] = []
        run: list[Item] = []
        for it in [*items, Item("end", "")]:
            if it.kind == "num" and not it.whole and not (run and run[-1].whole):
                run.append(it)
                continue
            if it.kind == "num" and not run:
                run.append(it)
                continue
            if run:
                for ch in split_run(_WORDS, [r.num for r in run if r.num is not None], 0):
                    out.append(
                        Item(
                            "chunk",
                            " ".join(r.text for r in run[ch.start : ch.end]),
                            chunk=ch,
                            size=ch.end - ch.start,
                        )
                    )
                run = []
            if it.kind == "num":
                run.append(it)
            elif it.kind != "end":
                out.append(it)
        return out

    # ------------------------------------------------------------------------------------------ slots
    def slots(self, items: list[Item]) -> Slots:
        s = Slots()
        for p, it in enumerate(items):
            if it.kind == "bank":
                s.banks.append(it.text)
            elif it.kind == "biller":
                s.billers.append(int(it.text))
            elif it.kind == "account":
                s.accounts.append(it.text)
            if it.kind != "chunk" or it.chunk is None:
                continue
            ch = it.chunk
            before = items[p - 1] if p > 0 else None
            negative = before is not None and before.role == "minus"
            if before is not None and before.kind in ("role", "word") and before.text in _WORDS.homophones:
                ch = with_slip(ch, _WORDS.homophones[before.text])
            q = p - 1
            while q >= 0 and items[q].kind == "role" and items[q].role in SKIP_ROLES:
                q -= 1
            marker = (
                items[q].role
                if q >= 0 and items[q].kind == "role"
                else ("bank" if q >= 0 and items[q].kind == "bank" else "")
            )
            after = items[p + 1] if p + 1 < len(items) else None
            # "500 bob": a currency word after the number, unless it introduces the next number instead.
            after2 = items[p + 2] if p + 2 < len(items) else None
            money_after = (
                after is not None
                and after.role == "currency"
                and ch.value is not None
                and not (after2 is not None and after2.kind == "chunk")
            )
            digits = ch.digits or _int_digits(ch.value)
            if marker in ("till", "paybill", "agent") and not ch.digits and ch.value is not None:
                # "lipa till elfu moja", "till 12k": a business number is a digit string, never an amount
                s.amounts.append((ch, False, negative))
            elif marker in ("till", "paybill", "agent", "store"):
                getattr(s, marker).append(replace(ch, digits=digits))
            elif marker == "pochi" and (
                looks_like_phone(ch.digits, ch.plus, recipient=True)
                or (not ch.spoken and len(ch.digits) >= 5)
            ):
                s.phones.append(ch)
            elif marker in ("currency", "amount", "minus") or money_after:
                s.amounts.append((ch, True, negative))
            elif marker == "bank" and ch.digits and len(ch.digits) >= 6:
                s.accounts.append(ch.digits)  # "akaunti yangu ya NCBA namba 0865...": an account, not a phone
            elif ch.digits and looks_like_phone(ch.digits, ch.plus, recipient=marker == "to"):
                s.phones.append(ch)
            elif (
                marker == "to"
                and ch.digits
                and not ch.spoken
                and len(ch.digits) >= 5
                and ch.slip_value is None
            ):
                s.bad_recipients.append(ch)
            else:
                s.amounts.append((ch, marker == "for", negative))
        return s

    # ------------------------------------------------------------------------------------------ run
    def run(self) -> ParseResult:
        items = apply_corrections(self.items(), self.ev)
        verdict = "null" if items is None else self._not_a_command(items)
        if verdict == "null" or items is None:
            return ParseResult(text=self.text, confidence=0, language=self.language)
        if verdict:
            return self._query(verdict)
        s = self.slots(items)
        roles = {it.role for it in items if it.kind == "role"}
        spans = _spans(items)
        ev = self.ev
        ev.unknown = self.overflow + sum(len(sp) for sp in spans)
        if self.account_tail and not s.amounts and self.account_tail[0] in s.accounts:
            # "account 54321678 2000", "account 0123 456 789 1000": the last group is probably the amount
            # (a second number, or a round figure), but it may end the account: ask, never guess.
            full, last = self.account_tail
            s.accounts[s.accounts.index(full)] = full[: -len(last)]
            s.amounts.append((Chunk(0, 0, last, Decimal(last), False), False, False))
            ev.conflicts += 1
        for a, b in pairwise(items):
            if a.chunk and b.chunk and a.chunk.spoken and a.chunk.digits and b.chunk.toks:
                if b.chunk.toks[0].kind in ("tens", "teen"):
                    ev.conflicts += 1  # "... nine three fifty": 3 + 50 or 350? Ask.
            if a.role in ("send", "pay") and b.role == "self":
                ev.conflicts += 1  # "John sent me 500", "send me 500": money to the speaker? Ask.
            if (
                a.chunk
                and b.chunk
                and not looks_like_phone(a.chunk.digits, a.chunk.plus)
                and _single_then_group(a.text.split()[-1], b.text.split()[0])
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
        if txn is None and s.amounts and _to_someone(items):
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
        intent = _intent(txn, out) if not out["missing"] and not out["errors"] else None
        actionable = intent is not None
        if not actionable and not out["missing"] and not out["errors"]:
            out["errors"] = ["invalid_number"]  # a slot failed the typed model's checks
        out["confidence"] = conf.score(ev, actionable=actionable)
        return ParseResult(**out, intent=intent, language=self.language)

    def _query(self, query: str | None) -> ParseResult:
        if query is None:
            return ParseResult(text=self.text, confidence=0, language=self.language)
        fields: dict[str, Any] = {"text": self.text, "type": query, "intent": _intent(query, {})}
        fields["language"] = self.language
        return ParseResult(**fields, confidence=conf.score(self.ev, actionable=True))

    # ------------------------------------------------------------------------------------------ not a command
    def _not_a_command(self, items: list[Item]) -> str:
        """Questions, negations, stories of the past and services we do not offer are never commands.

        Returns "null" for those, a query type for a question about past payments ("nimetuma pesa kwa
        nani?") or the balance ("mpesa yangu iko na ngapi"), and "" for anything else.
        """
        roles = {it.role for it in items if it.kind == "role"}
        amount = any(it.kind == "chunk" for it in items)
        verbs = roles & {"send", "pay", "withdraw", "buy_goods"}
        vocab = _VOCAB
        past = any(
            (it.text in vocab.past_tense and it.text not in vocab.have_words)
            or (it.kind == "word" and _told(it.text))
            for it in items
        )
        if past and not amount and roles & {"balance", "quantity"}:
            return "transaction_history"  # "nimetumia pesa ngapi wiki hii": how much I have spent
        if "unsupported" in roles:
            return "null"  # airtime, loans, M-Shwari and Fuliza (their statements too), reminders
        if roles & {"history", "balance"} and not amount:
            if "history" in roles or not (verbs or roles & {"question", "negation", "unsupported"}):
                return ""  # "who did I pay yesterday?", "what payments have i made?": a query, asked as one
        asks_who = not amount and any(it.text in _VOCAB.interrogatives for it in items)
        story = "transaction_history" if asks_who else "null"
        if roles & {"negation", "question", "hearsay"}:
            return "null"  # "don't send", "how much does it cost", "Mama wants me to send 500"
        if "past_time" in roles:
            return story  # "I paid my bill yesterday"
        if "quantity" in roles and verbs:
            return "null"  # "how much to send 5000 to mama", "tuma ngapi": asking, not telling
        for p, it in enumerate(items):
            if it.kind == "word":
                w = it.text
                if w in vocab.always_past:
                    return story  # "received 500 from John"
                if w not in vocab.verb_exceptions and vocab.swahili_negative.match(w):
                    return "null"  # "usitume", "sijatuma"
                if _told(w):
                    return story  # "nilituma" (or "nimetuma pesa kwa nani?": my history)
            if p and it.text in vocab.past_tense:
                if it.text in vocab.have_words and "quantity" in roles and not amount:
                    continue  # "how much cash I got": what I have, not a story
                a = items[p - 1]
                to_me = p + 1 < len(items) and items[p + 1].role == "self"
                named = a.kind == "word" and a.text in self.index.known_words
                if to_me or named or a.text in vocab.subjects or is_phone(a):
                    return story  # "I sent 500 to mama", "Juma sent me 500": what happened, not a command
        slots = roles & {"till", "paybill", "agent", "account"}
        if "quantity" in roles and not amount and not slots and not _to_someone(items):
            return "check_balance"  # "how much cash do I have on mpesa", "pesa kwa mpesa ni ngapi"
        return ""

    # ------------------------------------------------------------------------------------------ type
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

    # ------------------------------------------------------------------------------------------ slots
    def _amount(self, s: Slots, out: dict[str, Any], missing: list[str], errors: list[str]) -> None:
        ev = self.ev
        amounts = s.amounts
        if not amounts:
            missing.append("amount")
            return
        if len(amounts) > 1:
            plain = [a for a in amounts if a[0].slip_value is None]
            if plain:
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


def _told(word: str) -> bool:
    """A Swahili payment verb in the past or conditional ("nilituma", "alinitumia", "nikituma")."""
    return word not in _VOCAB.verb_exceptions and bool(_VOCAB.swahili_past.match(word))


def _to_someone(items: list[Item]) -> bool:
    """ "... to <a name>": "to"/"kwa" followed by words the vocabulary does not know."""
    return any(a.role == "to" and b.kind == "word" for a, b in pairwise(items))


def _amount_said(items: list[Item]) -> bool:
    """Was a number said so far that is not another slot's number (the amount, said before a business)?"""
    for q, it in enumerate(items):
        if (
            it.kind == "num"
            and not it.whole
            and marker(items, q) not in SLOT_ROLES
            and not (q and items[q - 1].kind == "num")
        ):
            return True
    return False


def _split_number_hyphens(tokens: list[str]) -> list[str]:
    """ "twenty-five" is two number words; "co-op" and "m-pesa" stay whole."""
    out: list[str] = []
    for t in tokens:
        parts = t.split("-") if "-" in t else ()
        if len(parts) > 1 and all(is_number_word(_WORDS, p) and not p[:1].isdigit() for p in parts):
            out.extend(parts)
        else:
            out.append(t)
    return out


def _amount_groups(groups: list[str]) -> bool:
    """Digit groups that read as one amount: "500", "7 500" (thousands said apart)."""
    first, rest = groups[0], groups[1:]
    if first.startswith("0") or len(first) > 6:
        return False
    return not rest or (len(first) <= 3 and all(len(g) == 3 for g in rest))


def _account_tail(parts: list[tuple[str, bool]]) -> str | None:
    """The amount, when the last digit groups said after "account" may be the amount instead.

    Two written numbers ("54321678 2000") or a round figure at the end ("0123 456 789 1000", "a b c one two
    three 500"); otherwise the groups are all one account ("0123 456 789").
    """
    trailing = 0
    while trailing < len(parts) and parts[-1 - trailing][1]:
        trailing += 1
    for m in range(1, min(trailing, len(parts) - 1) + 1):
        tail = [p for p, _ in parts[-m:]]
        if not _amount_groups(tail):
            continue
        amount = "".join(tail)
        if (m == 1 and len(parts) == 2 and parts[0][1]) or int(amount) % 50 == 0:
            return amount
    return None


def _single_then_group(last: str, nxt: str) -> bool:
    """A lone written digit then a three-digit group ("... 1 500"): where one number ends is unclear."""
    return len(last) == 1 and last.isdigit() and len(nxt) == 3 and nxt.isdigit() and nxt[0] != "0"


def _int_digits(value: Decimal | None) -> str:
    if value is None or value < 0 or value != value.to_integral_value():
        return ""
    try:
        return str(int(value))
    except (ValueError, OverflowError):
        return ""


def _spans(items: list[Item]) -> list[list[str]]:
    """Runs of words the vocabulary does not know: candidate names (or noise)."""
    spans: list[list[str]] = []
    cur: list[str] = []
    for it in items:
        if it.kind == "word":
            cur.append(it.text)
        else:
            if cur:
                spans.append(cur)
            cur = []
    if cur:
        spans.append(cur)
    return spans


def _intent(txn: str, out: dict[str, Any]) -> Intent | None:
    """The typed intent, or None when a field fails its model's checks (e.g. a 4-digit till)."""
    data = {k: v for k, v in out.items() if k in _FIELDS[txn] and v not in ("", None)}
    data["type"] = txn
    try:
        intent: Intent = _ADAPTER.validate_python(data)
    except ValidationError:
        return None
    return intent


_FIELDS: dict[str, tuple[str, ...]] = {
    "send_phone": ("amount", "phone", "contact_id"),
    "buy_goods_pochi": ("amount", "phone", "contact_id"),
    "buy_goods_till": ("amount", "till"),
    "paybill": ("amount", "paybill", "account"),
    "withdraw": ("amount", "agent", "store"),
    "bank_to_mpesa": ("amount", "bank_code"),
    "mpesa_to_bank": ("amount", "bank_code", "account"),
    "check_balance": (),
    "transaction_history": (),
}
_ADAPTER: TypeAdapter[Intent] = TypeAdapter(Intent)
