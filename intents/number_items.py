"""Numbers in context: the utterance cut into items (role words, numbers, names, banks, accounts), with the
numbers said in groups after a slot marker joined ("till 55 44 33", "account 0123 456 789") and the runs of
number words cut into chunks (`intents/numbers.py` holds the number grammar itself).
"""

from __future__ import annotations

import re
from decimal import Decimal

from intents.items import SKIP_ROLES, SLOT_ROLES, Item, marker
from intents.numbers import NumTok, classify, is_number_word, split_run
from intents.utterance import VOCAB, WORDS, Utterance

_ACCOUNT_TOKEN = re.compile(r"^[a-z0-9]+$")
# Currency marks the tokenizer splits off glued digits ("ksh1500"); inside an account they are letters.
_GLUED_CURRENCY = frozenset({"kshs", "ksh", "kes", "shs", "sh"})
# Words that spell a digit string ("double oh seven ..."), as a business number said in groups may be.
_SPELLED_DIGIT = frozenset(WORDS.digits) | frozenset(WORDS.repeaters) | WORDS.zero_in_digits

# What a polite particle ("si", "unaweza") may come before and still be a command.
_VERB_ROLES = frozenset({"send", "pay", "withdraw", "buy_goods", "paybill", "till"})


class NumberReader(Utterance):
    """Tokens -> items: which tokens are numbers, and which numbers belong together."""

    def items(self) -> list[Item]:
        toks, n, i = self.tokens, len(self.tokens), 0
        out: list[Item] = []
        account_mode = False
        group_mode = ""  # the business slot whose number may follow, said in groups
        while i < n:
            if group_mode and (toks[i].isdigit() or toks[i] in _SPELLED_DIGIT):
                slot, group_mode = group_mode, ""
                amount_before = amount_said(out)
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
                    and not (toks[j] in WORDS.zero_in_digits and classify(WORDS, toks, j, False))
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
            nt = classify(WORDS, toks, i, prev_num)
            if nt is not None and self._name_not_number(out, i):
                nt = None
            if nt is not None:
                out.append(Item("num", toks[i], num=nt))
                i += 1
                continue
            if self._title(i):
                i += 1  # "mr Wafula", "bi Wambui": the title is not part of the name
                continue
            role, size = self._phrase(i)
            if not role and toks[i] in VOCAB.polite and i + 1 < n and self._phrase(i + 1)[0] in _VERB_ROLES:
                role = "filler"  # "si umpe mama mia tano", "unaweza kumtumia": the command, said politely
            if role == "filler" and size == 1 and toks[i] in self.index.known_words:
                role = ""  # a contact really called "Boss" or "Sasa": let the name matcher have the word
            if role.startswith("bank:"):
                out.append(Item("bank", role[5:], size=size))
                account_mode = self._groups_after_bank(i + size)  # "equity 0170 2998 1134": one account
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

    def _title(self, i: int) -> bool:
        """A title before a name ("mzee Kariuki"), unless a saved name has the word ("Mzee Ali")."""
        toks = self.tokens
        if toks[i] not in VOCAB.honorifics or toks[i] in self.index.known_words or i + 1 >= len(toks):
            return False
        nxt = toks[i + 1]
        return not self._phrase(i + 1)[0] and not is_number_word(WORDS, nxt)

    def _groups_after_bank(self, j: int) -> bool:
        """Written digit groups right after a bank's name ("equity 0170 2998 1134") are its account number,
        kept whole; a single number ("from KCB 5000") is left to the amount reader."""
        toks, n = self.tokens, len(self.tokens)
        while j < n and self._role_at(j) in ("number", "filler"):
            j += 1
        groups = 0
        while j < n and toks[j].isdigit() and not self._money_follows(j):
            groups += 1
            j += 1
        return groups >= 2

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
            counted = nxt in WORDS.after and not self._leads_count(j + 1)  # "0 thao mbili": thao leads
            if counted or nxt in WORDS.point or nxt in WORDS.tens or nxt in WORDS.teens:
                break  # "... five hundred", "... 2 thousand": the amount starts here
            if t.isdigit():
                group, step = t, 1
            elif t in WORDS.digits:
                group, step = str(WORDS.digits[t]), 1
            elif t in WORDS.zero_in_digits and (groups or nxt in WORDS.digits):
                group, step = "0", 1
            elif t in WORDS.repeaters and (nxt in WORDS.digits or nxt in WORDS.zero_in_digits):
                group, step = str(WORDS.digits.get(nxt, 0)) * WORDS.repeaters[t], 2
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
        amount_next = j < n and is_number_word(WORDS, toks[j])
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
        return not is_number_word(WORDS, nxt) and nxt not in WORDS.joiners

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
            number_start = t in WORDS.digits or t.isdigit() or (t in WORDS.article and nxt != "k")
            counted = nxt in WORDS.point or (nxt in WORDS.after and not self._leads_count(j + 1))
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
            if t in WORDS.digits:
                parts.append((str(WORDS.digits[t]), False))
            elif t in WORDS.zero_in_digits and (parts or nxt in WORDS.digits or nxt in WORDS.repeaters):
                parts.append(("0", False))  # "account oh nine eight ...": the leading zero counts
            elif t in WORDS.repeaters and (nxt in WORDS.digits or nxt in WORDS.zero_in_digits):
                digit = str(WORDS.digits.get(nxt, 0))  # "double oh" is 00
                parts.append((digit * WORDS.repeaters[t], False))
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
        if parts and single_then_group(toks[j - 1], toks[j] if j < n else ""):
            self.ev.conflicts += 1  # "akaunti ... 1 500": the 1 ends the account or starts "1 500"? Ask.
        account = "".join(p for p, _ in parts)
        tail = _account_tail(parts)
        if tail:
            self.account_tail = (account, tail)
        return account, j

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
                for ch in split_run(WORDS, [r.num for r in run if r.num is not None], 0):
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


def amount_said(items: list[Item]) -> bool:
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


def single_then_group(last: str, nxt: str) -> bool:
    """A lone written digit then a three-digit group ("... 1 500"): where one number ends is unclear."""
    return len(last) == 1 and last.isdigit() and len(nxt) == 3 and nxt.isdigit() and nxt[0] != "0"
