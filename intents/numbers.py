"""Numbers as people say them: digits with separators, English, Swahili and Sheng words, spelled digits.

A run of number tokens is cut into *chunks*. Each chunk has up to two readings: a digit string (what a phone,
till or account number is) and a value (what an amount is). The parser picks the reading from context.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation

from intents.vocabulary import NumberWords

_RAW = re.compile(r"^(\+?)(\d[\d,]*(?:\.\d+)*)(k?)$")
_THOUSAND = Decimal(1000)
# A multiplier below a thousand ("hundred", "mia", "soo", "punch") counts at most this many less one.
_SMALL_COUNT = Decimal(100)


@dataclass(frozen=True)
class NumTok:
    """One token that is (part of) a number.

    kind: raw (written digits), digit (a one-digit word), repeat (double/triple), teen, tens,
    mult (hundred/elfu/thao...), article ("a" before a multiplier), join (and/na), point.
    """

    kind: str
    text: str
    value: Decimal = Decimal(0)
    sw: bool = False
    after: Decimal | None = None
    before: Decimal | None = None
    digits: str = ""
    plus: bool = False
    bad: bool = False  # "1.2.3": not a number


@dataclass(frozen=True)
class Chunk:
    """A number found in the utterance, with its readings.

    digits: the digit-string reading ("0712345678"), or "" when it is not a spelled digit string.
    value: the amount reading, or None when it cannot be an amount (e.g. a leading zero).
    spoken: said in words rather than written in digits (slightly less certain).
    slip_value: the value if the word before ("to"/"for") was really "two"/"four".
    """

    start: int
    end: int
    digits: str
    value: Decimal | None
    spoken: bool
    plus: bool = False
    bad: bool = False
    slip_value: Decimal | None = None
    spaced: bool = False  # written as separate groups ("5 6 7 8", "0712 345 678")
    repeats: bool = False  # used "double"/"triple"/"oh"
    toks: tuple[NumTok, ...] = ()  # the words of a value chunk (kept to re-read a to/for slip)


def classify(words: NumberWords, tokens: list[str], i: int, prev_is_num: bool) -> NumTok | None:
    """Is tokens[i] part of a number here? Several words only count in context ("oh", "a", "na", "k")."""
    t = tokens[i]
    nxt = tokens[i + 1] if i + 1 < len(tokens) else ""
    m = _RAW.match(t)
    if m:
        plus, body, k = m.group(1), m.group(2), m.group(3)
        grouped = "," in body  # "2,500": written as an amount, never a phone or till
        body = body.replace(",", "")
        # "1.2.3" is not a number; nor, without "k", is "1.500": cents have at most two places, and
        # "1.500" may be 1,500 written the European way.
        bad = body.count(".") > 1 or (not k and "." in body and len(body.rsplit(".", 1)[1]) > 2)
        try:
            value = Decimal(body) if not bad else Decimal(0)
        except InvalidOperation:  # pragma: no cover - the regex only lets digits through
            value, bad = Decimal(0), True
        if k:
            value *= _THOUSAND
        digits = body if ("." not in body and not k and not grouped) else ""
        return NumTok("raw", t, value=value, digits=digits, plus=bool(plus), bad=bad)
    if t in words.digits:
        return NumTok(
            "digit", t, value=Decimal(words.digits[t]), sw=t in words.swahili, digits=str(words.digits[t])
        )
    if t in words.zero_in_digits and (_is_digitish(words, nxt) or nxt in words.repeaters or prev_is_num):
        return NumTok("digit", t, value=Decimal(0), digits="0")
    if t in words.repeaters and _is_digitish(words, nxt):
        return NumTok("repeat", t, value=Decimal(words.repeaters[t]))
    if t in words.teens:
        return NumTok("teen", t, value=Decimal(words.teens[t]))
    if t in words.tens:
        return NumTok("tens", t, value=Decimal(words.tens[t]), sw=t in words.swahili)
    after, before = words.after.get(t), words.before.get(t)
    if after is not None or before is not None:
        if before is None and not prev_is_num and t == "k":
            return None  # a lone "k" is a letter, not "thousand"
        return NumTok("mult", t, after=after, before=before, sw=t in words.swahili)
    if t in words.article and nxt in words.after:
        return NumTok("article", t, value=Decimal(1))
    if prev_is_num and is_number_word(words, nxt):
        if t in words.joiners:
            return NumTok("join", t)
        if t in words.point:
            return NumTok("point", t)
    return None


def is_number_word(words: NumberWords, t: str) -> bool:
    return bool(
        _RAW.match(t)
        or t in words.digits
        or t in words.teens
        or t in words.tens
        or t in words.after
        or t in words.before
        or t in words.zero_in_digits
    )


def _is_digitish(words: NumberWords, t: str) -> bool:
    return t in words.digits or t in words.zero_in_digits or (len(t) == 1 and t.isdigit())


def _digitish(t: NumTok) -> bool:
    return t.kind in ("digit", "repeat") or (t.kind == "raw" and len(t.digits) == 1 and not t.plus)


# --------------------------------------------------------------------------------------------- chunking


def split_run(words: NumberWords, toks: list[NumTok], offset: int) -> list[Chunk]:
    """Cut one run of consecutive number tokens into chunks (offset: index of toks[0] in the item list)."""
    out: list[Chunk] = []
    i, n = 0, len(toks)
    while i < n:
        t = toks[i]
        if t.kind in ("join", "point"):
            i += 1
            continue
        if _digitish(t):
            j, digits, rep = _digit_string(toks, i)
            if len(digits) >= 2:
                spoken = any(x.kind != "raw" for x in toks[i:j])
                out.append(
                    _digit_chunk(offset + i, offset + j, digits, spoken, spaced=not spoken, repeats=rep)
                )
                i = j
                continue
        counted = (  # "2 thousand"; a phone-shaped number never counts thousands ("0715487856 thao ...")
            i + 1 < n
            and counts_back(toks, i + 1)
            and not (t.kind == "raw" and (t.plus or len(t.digits) > 6 or t.digits.startswith("0")))
        )
        if t.kind == "raw" and not t.bad and t.digits and not counted:
            j = _join_raw(toks, i)
            digits = "".join(x.digits for x in toks[i:j])
            out.append(_digit_chunk(offset + i, offset + j, digits, False, plus=t.plus, spaced=j - i > 1))
            i = j
            continue
        if t.kind == "raw" and (t.bad or not t.digits) and not counted:
            out.append(Chunk(offset + i, offset + i + 1, "", None if t.bad else t.value, False, bad=t.bad))
            i += 1
            continue
        value, j = parse_value(toks, i)
        if j == i:  # nothing parsed: skip the token rather than loop
            i += 1
            continue
        bad = any(x.bad for x in toks[i:j])
        out.append(Chunk(offset + i, offset + j, "", value, True, bad=bad, toks=tuple(toks[i:j])))
        i = j
    return out


def with_slip(chunk: Chunk, factor: int) -> Chunk:
    """Re-read a chunk that starts with a multiplier as if "to"/"for" before it were "two"/"four"."""
    if not chunk.toks or chunk.toks[0].kind != "mult" or chunk.toks[0].after is None:
        return chunk
    head = [NumTok("digit", "?", value=Decimal(factor))]
    return replace(chunk, slip_value=_slip(head, list(chunk.toks)))


def _slip(head: list[NumTok], toks: list[NumTok]) -> Decimal | None:
    seq = head + toks
    value, j = _parse_en(seq, 0)
    return value if j == len(seq) else None


def _digit_chunk(
    start: int,
    end: int,
    digits: str,
    spoken: bool,
    *,
    plus: bool = False,
    spaced: bool = False,
    repeats: bool = False,
) -> Chunk:
    value = Decimal(digits) if digits and (digits[0] != "0" or len(digits) == 1) else None
    return Chunk(start, end, digits, value, spoken, plus=plus, spaced=spaced, repeats=repeats)


def _digit_string(toks: list[NumTok], i: int) -> tuple[int, str, bool]:
    """Spelled digits: "zero seven double one ..."; stops before a digit that starts "five hundred"."""
    n, j, parts, rep = len(toks), i, [], False
    while j < n and _digitish(toks[j]):
        t = toks[j]
        if t.kind == "repeat":
            if j + 1 < n and toks[j + 1].kind in ("digit", "raw") and _digitish(toks[j + 1]):
                parts.append(toks[j + 1].digits * int(t.value))
                rep = True
                j += 2
                continue
            break
        if j + 1 < n and (toks[j + 1].kind == "point" or counts_back(toks, j + 1)):
            break  # "... seven five hundred": the five belongs to the amount
        if t.text in ("oh", "o"):
            rep = True
        parts.append(t.digits)
        j += 1
    return j, "".join(parts), rep


def _join_raw(toks: list[NumTok], i: int) -> int:
    """How many written digit groups belong together ("0712 345 678", "1 000", "+254 712 345 678")."""
    j = i + 1
    while j < len(toks) and toks[j].kind == "raw" and toks[j].digits and not toks[j].plus:
        groups = [t.digits for t in toks[i:j]]
        if _complete_phone(groups, toks[i].plus) or not _groups_ok([*groups, toks[j].digits], toks[i].plus):
            break  # "+254 712 345 678 100": the phone is complete, 100 is the amount
        j += 1
    return j


def _complete_phone(groups: list[str], plus: bool) -> bool:
    digits = "".join(groups)
    if plus or digits.startswith("254"):
        return len(digits) == 12
    if digits.startswith("0"):
        return len(digits) == 10
    return len(groups) >= 3 and len(digits) == 9 and digits[0] in "17"


def _groups_ok(groups: list[str], plus: bool) -> bool:
    first, rest = groups[0], groups[1:]
    total = sum(len(g) for g in groups)
    if all(len(g) == 1 for g in groups):
        return True
    cap = 12 if (plus or first.startswith("254")) else 10 if first.startswith("0") else 9
    phone_like = (plus or first[0] in "017" or first.startswith("254")) and all(len(g) <= 4 for g in groups)
    if phone_like and total <= cap:
        return True
    phone_start = (
        plus
        or first == "254"
        or (first.startswith(("07", "01")) and len(first) >= 4)
        or (first.startswith(("2547", "2541")) and len(first) >= 6)
    )
    if phone_start and total <= cap and len(groups) <= 4 and all(len(g) >= 3 for g in rest):
        return True  # "0712 345678", "+254 712345678": a phone's start, however it is grouped
    if plus or first.startswith(("0", "254")):
        return False  # a phone's start never turns into an amount
    return 1 <= len(first) <= 3 and first[0] != "0" and all(len(g) == 3 for g in rest)


# ------------------------------------------------------------------------------------------ value grammar


def parse_value(toks: list[NumTok], i: int) -> tuple[Decimal, int]:
    """Longest number starting at toks[i]; Swahili grammar when it starts with a Swahili word."""
    t = toks[i]
    if t.sw or (t.kind == "mult" and t.before is not None and (t.after is None or not _after_ok(toks, i))):
        value, j = _parse_sw(toks, i, None)
        en_value, en_j = _parse_en(toks, i)
        if en_j > j:  # Sheng mixes: "sita thao" is six thousand
            return en_value, en_j
        if j > i:
            return value, j
    return _parse_en(toks, i)


def counts_back(toks: list[NumTok], i: int) -> bool:
    """Is toks[i] a multiplier of the number said before it ("5 thao")? A Sheng word that can lead
    ("thao tano", "mbao tatu") and is followed by its count starts a new number instead."""
    t = toks[i]
    if t.kind != "mult" or t.after is None:
        return False
    return t.before is None or _after_ok(toks, i)


def _after_ok(toks: list[NumTok], i: int) -> bool:
    """A Sheng word like "thao" at the start counts as "thousand" only when no count follows it, or when the
    count that follows has its own smaller multiplier ("2 thao 5 hundred": 2,500)."""
    if not (i + 1 < len(toks) and toks[i + 1].kind in ("digit", "tens", "teen", "raw")):
        return True
    own = toks[i + 2].after if i + 2 < len(toks) else None
    mine = toks[i].after
    return own is not None and mine is not None and own < mine and toks[i + 2].before is None


def _next_starts_digits(toks: list[NumTok], j: int) -> bool:
    return j + 1 < len(toks) and toks[j + 1].kind in ("digit", "repeat") and toks[j].kind == "digit"


def _parse_en(toks: list[NumTok], i: int) -> tuple[Decimal, int]:
    """English order, multiplier after its count: "one thousand two hundred and fifty", "two point five k"."""
    total, group, last, big = Decimal(0), Decimal(0), "", Decimal(0)
    j, n = i, len(toks)
    while j < n:
        t = toks[j]
        k = t.kind
        if k == "raw" and last == "":
            if t.bad:
                break
            group, last = t.value, ("done" if t.text.endswith("k") else "num")
        elif (
            k == "raw"
            and last in ("mult", "and", "hund")
            and not (last == "hund" and group % 1000 < 100)  # "ashu 100", "mbao 5": not 110, not 25
            and _small_written(t, _room(group, big))
            and not _bigger_follows(toks, j + 1, big)
        ):
            group, last = group + t.value, "num"  # "3 thousand 2 hundred", "2 thousand and 50": mixed
        elif k == "article" and last == "":
            group, last = Decimal(1), "num"
        elif k == "digit" and last in ("", "tens", "hund", "mult", "and"):
            if last != "" and _next_starts_digits(toks, j):
                break
            if last == "" and t.value == 0 and j + 1 < n and toks[j + 1].kind != "point":
                group, last = Decimal(0), "done"
            else:
                group, last = group + t.value, "unit"
        elif k == "teen" and last in ("", "hund", "mult", "and"):
            group, last = group + t.value, "teen"
        elif k == "tens" and last in ("", "hund", "mult", "and"):
            group, last = group + t.value, "tens"
        elif k == "mult" and t.after is not None:
            m = t.after
            if last == "" and t.before is not None:
                group, j = m, j + 1  # a bare Sheng word read the English way is itself alone: "soo two
                break  # thousand" is never "(one hundred) two thousand"; its Swahili reading may go on
            if last in ("", "unit", "teen", "tens", "num", "frac", "hund") or (last == "mult" and m < 1000):
                count = group if last != "" else Decimal(1)
                if last != "" and t.before is not None and not _after_ok(toks, j):
                    break  # "mbili soo tano": 2 x 100 + 5, or 2 and 500? A new number starts: ask
                if m < 1000:
                    if last == "hund" or count >= _SMALL_COUNT:
                        break  # "600 soo", "600 hundred": no one counts hundreds past 99
                    group, last = count * m, "hund"
                else:
                    if big and m >= big:
                        break
                    total, group, last, big = total + count * m, Decimal(0), "mult", m
            else:
                break
        elif (
            k == "join"
            and last in ("hund", "mult")
            and j + 1 < n
            and (
                toks[j + 1].kind in ("digit", "teen", "tens")
                or _small_written(toks[j + 1], _room(group, big))
            )
        ):
            last = "and"
        elif (
            k == "point"
            and last in ("unit", "tens", "teen", "num", "hund")
            and j + 1 < n
            and toks[j + 1].kind == "digit"
        ):
            j += 1
            frac = ""
            while j < n and toks[j].kind == "digit":
                frac += toks[j].digits
                j += 1
            group, last = group + Decimal("0." + frac), "frac"
            continue
        else:
            break
        j += 1
    return total + group, j


def _bigger_follows(toks: list[NumTok], j: int, big: Decimal) -> bool:
    """ "2 thousand 3 thousand": the 3 counts a multiplier as big as the last, so a new number starts."""
    after = toks[j].after if j < len(toks) else None
    return after is not None and after >= (big or Decimal(1000))


def _room(group: Decimal, big: Decimal) -> Decimal:
    """What written digits may still add: under 100 after "two hundred", under the last multiplier after
    "three thousand" (under 1,000 when none was said)."""
    return Decimal(100) if group % 1000 >= 100 else (big or Decimal(1000))


def _small_written(t: NumTok, below: Decimal) -> bool:
    """Written digits that can be the rest of a number said in words: below the last multiplier said, with no
    leading zero and no more than three digits (a phone or a till never continues an amount)."""
    return (
        t.kind == "raw"
        and not t.bad
        and not t.plus
        and 0 < len(t.digits) <= 3
        and t.digits[0] != "0"
        and t.value < below
    )


def _parse_sw(toks: list[NumTok], i: int, bound: Decimal | None) -> tuple[Decimal, int]:
    """Swahili order, multiplier first: "elfu kumi na mbili" (12,000), "laki mbili na elfu hamsini"."""
    total, j, n, scale = Decimal(0), i, len(toks), bound
    while j < n:
        t = toks[j]
        if t.kind == "mult" and t.before is not None and (scale is None or t.before < scale):
            m = t.before
            coef, j = _sw_coef(toks, j + 1, m)
            total, scale = total + coef * m, m
            continue
        if t.kind == "join" and j > i and j + 1 < n and toks[j + 1].kind in ("mult", "digit", "tens", "teen"):
            j += 1
            continue
        if t.kind in ("digit", "tens", "teen") and (scale is None or scale > 1):
            if j > i and _next_starts_digits(toks, j):
                break
            v, j2 = _sw_small(toks, j)
            if scale is not None and v >= scale:
                break
            total, scale, j = total + v, Decimal(1), j2
            continue
        break
    return total, j


def _sw_coef(toks: list[NumTok], j: int, m: Decimal) -> tuple[Decimal, int]:
    """The count after a Swahili multiplier; 1 when none is said ("elfu" alone is a thousand)."""
    n = len(toks)
    if j >= n:
        return Decimal(1), j
    t = toks[j]
    if t.kind == "raw" and not t.bad:
        if m < 1000 and t.value >= _SMALL_COUNT:
            return Decimal(1), j  # "soo 500", "mia 600": not 50,000; the 500 is a number of its own
        return t.value, j + 1
    if t.kind in ("digit", "tens", "teen"):
        if _next_starts_digits(toks, j):
            return Decimal(1), j
        return _sw_small(toks, j)
    if t.kind == "mult" and t.before is not None and t.before < m and m >= 1000:
        return _parse_sw(toks, j, m)
    return Decimal(1), j


def _sw_small(toks: list[NumTok], j: int) -> tuple[Decimal, int]:
    """Below a hundred: "tano", "kumi na tano", "hamsini"; English words work here too."""
    n = len(toks)
    t = toks[j]
    v = t.value
    j += 1
    if t.kind == "tens":
        if j + 1 < n and toks[j].kind == "join" and toks[j + 1].kind == "digit" and toks[j + 1].value > 0:
            v += toks[j + 1].value
            j += 2
        elif j < n and toks[j].kind == "digit" and toks[j].value > 0 and not _next_starts_digits(toks, j):
            v += toks[j].value
            j += 1
    return v, j
