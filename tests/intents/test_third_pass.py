"""Property tests for issue 21's kinds, each in English, Swahili and Sheng: money slang, stories around the
command, polite verbs, honorifics, names by how they start, digits and words mixed, grouped bank accounts,
and the language of Sheng and of product names. Built from the rules, never from a held-out set."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import assume, given
from hypothesis import strategies as st

from intents import ContactIndex, parse
from intents.banks import bank_phrases
from intents.vocabulary import load_yaml, vocabulary
from tests.intents.corpora import cases, contacts_index
from tests.intents.test_properties import EN_UNITS, PROPS, SW_UNITS, en_below_1000

BOOK = ContactIndex(
    [
        {"id": "m", "name": "Mary Wambui", "phone_number": "0733444555", "nickname": "Mama"},
        {"id": "w", "name": "Daniel Wafula", "phone_number": "0722333444"},
        {"id": "b", "name": "Baraka Mwangi", "phone_number": "0711222333"},
        {"id": "j", "name": "Baba Junior Kisumu", "phone_number": "0712000333"},
        {"id": "k", "name": "Joseph Kiprotich Rotich", "phone_number": "0700111222"},
    ]
)
WHO = {"mama": "m", "wafula": "w", "baraka": "b", "daniel wafula": "w", "baraka mwangi": "b"}
_NUMBERS = load_yaml("vocabulary.yaml")["numbers"]
# The Sheng money words (those a Swahili count follows), with their values.
SLANG = {
    w: int(v)
    for w, v in _NUMBERS["multipliers_before"].items()
    if w not in ("mia", "elfu", "laki", "milioni")
}


def confident(text: str, index: ContactIndex = BOOK) -> bool:
    return parse(text, index).confident


# --------------------------------------------------------------------------------------------- money slang
@PROPS
@given(word=st.sampled_from(sorted(SLANG)), count=st.integers(1, 9), who=st.sampled_from(sorted(WHO)))
def test_a_slang_word_then_a_swahili_count_multiplies(word: str, count: int, who: str) -> None:
    want = SLANG[word] * count
    assume(want <= 250_000)
    for text in (f"tuma {word} {SW_UNITS[count]} kwa {who}", f"mtumie {who} {word} {SW_UNITS[count]}"):
        r = parse(text, BOOK)
        assert r.amount == Decimal(want) and r.contact_id == WHO[who] and r.confident, text


@PROPS
@given(word=st.sampled_from(sorted(SLANG)), count=st.integers(1, 9))
def test_an_english_count_before_a_slang_word_multiplies(word: str, count: int) -> None:
    text = f"send {EN_UNITS[count]} {word} to mama"
    r = parse(text, BOOK)
    assert r.amount == Decimal(SLANG[word] * count) and r.confident, text


@PROPS
@given(word=st.sampled_from(sorted(SLANG)), who=st.sampled_from(sorted(WHO)))
def test_a_slang_word_alone_is_one_of_it(word: str, who: str) -> None:
    r = parse(f"tuma {word} kwa {who}", BOOK)
    assert r.amount == Decimal(SLANG[word]) and r.confident


@PROPS
@given(
    unknown=st.text(alphabet="bcdfghjklmnprstvwyz", min_size=3, max_size=6).map(lambda s: s + "i"),
    count=st.integers(1, 9),
)
def test_an_unknown_word_beside_a_number_word_is_asked_about(unknown: str, count: int) -> None:
    v = vocabulary()
    assume(unknown not in v.roles_of_word and unknown not in SLANG and unknown not in BOOK.known_words)
    assume(unknown not in v.numbers.after and unknown not in v.numbers.before)
    for text in (f"tuma {unknown} {SW_UNITS[count]} kwa mama", f"send mama {EN_UNITS[count]} {unknown}"):
        assert not confident(text), text


# ------------------------------------------------------------------------------------ digits and words mixed
def mixed(n: int, digits_for: frozenset[str]) -> str:
    """n (1..250,000) as "3 thousand 2 hundred and 5", each part as digits or words."""
    thousands, rest = divmod(n, 1000)
    hundreds, small = divmod(rest, 100)
    parts = []
    if thousands:
        count = str(thousands) if "t" in digits_for else en_below_1000(thousands, True)
        parts.append(f"{count} thousand")
    if hundreds:
        parts.append(f"{hundreds if 'h' in digits_for else EN_UNITS[hundreds]} hundred")
    if small:
        word = str(small) if "s" in digits_for else en_below_1000(small, False)
        parts.append(("and " if parts else "") + word)
    return " ".join(parts)


@PROPS
@given(n=st.integers(1, 250_000), digits_for=st.frozensets(st.sampled_from("ths")))
def test_digits_and_words_mixed_make_one_amount(n: int, digits_for: frozenset[str]) -> None:
    said = mixed(n, digits_for)
    assume(" " in said)
    for text in (f"send {said} to mama", f"tuma {said} kwa mama"):
        r = parse(text, BOOK)
        assert r.amount == Decimal(n) and r.confident, text


# ------------------------------------------------------------------------------------ stories and reasons
REASONS = [
    "it's for her bus fare home",
    "its for school shopping",
    "because she helped me move",
    "he will pay me back",
    "for food",
    "ni ya chakula",
    "amenisaidia kubeba mizigo",
    "ili alipe rent",
    "kwa sababu anahitaji karo",
    "coz amenisaidia sana",
    "juu ya fare",
]
COMMANDS = [
    ("send 700 to {who}", 700),
    ("tuma mia tano kwa {who}", 500),
    ("mpe {who} soo tatu", 300),
    ("ebu mtumie {who} thao mbili", 2000),
]


@PROPS
@given(
    command=st.sampled_from(COMMANDS),
    who=st.sampled_from(sorted(WHO)),
    reason=st.sampled_from(REASONS),
    comma=st.booleans(),
)
def test_a_reason_after_the_command_changes_nothing(
    command: tuple[str, int], who: str, reason: str, comma: bool
) -> None:
    template, amount = command
    text = template.format(who=who) + ("," if comma else "") + " " + reason
    r = parse(text, BOOK)
    assert (r.type, r.amount, r.contact_id) == ("send_phone", Decimal(amount), WHO[who]), text
    assert r.confident, text


@PROPS
@given(command=st.sampled_from(COMMANDS), who=st.sampled_from(sorted(WHO)), n=st.integers(2, 9))
def test_a_reason_holding_a_number_or_a_negation_keeps_the_question(
    command: tuple[str, int], who: str, n: int
) -> None:
    base = command[0].format(who=who)
    for reason in (f"it's for her {n} tickets", "it's not for brayo", "she sent me money yesterday"):
        assert not confident(f"{base}, {reason}"), reason


# ------------------------------------------------------------------------------------- polite verbs
POLITE = [
    "si umpe {who} {amount}",
    "naomba umtumie {who} {amount}",
    "ebu mtumie {who} {amount}",
    "si utume {amount} kwa {who}",
    "unaweza kumtumia {who} {amount}",
    "tafadhali umpatie {who} {amount}",
    "could you please send {who} {amount}",
    "would you mind sending {amount} to {who}",
    "hebu nitumie {who} {amount}",
]


@PROPS
@given(form=st.sampled_from(POLITE), who=st.sampled_from(sorted(WHO)), amount=st.integers(10, 250_000))
def test_polite_and_indirect_verbs_are_commands(form: str, who: str, amount: int) -> None:
    text = form.format(who=who, amount=amount)
    r = parse(text, BOOK)
    assert (r.type, r.amount, r.contact_id) == ("send_phone", Decimal(amount), WHO[who]), text
    assert r.confident, text


# --------------------------------------------------------------------------------------------- names
TITLES = sorted(vocabulary().honorifics)


@PROPS
@given(title=st.sampled_from(TITLES), surname=st.sampled_from(["wafula", "mwangi", "wambui"]))
def test_a_title_before_a_surname_finds_the_contact(title: str, surname: str) -> None:
    want = {"wafula": "w", "mwangi": "b", "wambui": "m"}[surname]
    for text in (f"send 500 to {title} {surname}", f"tuma mia tano kwa {title} {surname}"):
        r = parse(text, BOOK)
        assert r.contact_id == want and r.confident, text


@PROPS
@given(first=st.sampled_from(["amina", "peter", "faith"]), second=st.sampled_from(["mama", "junior", "boy"]))
def test_a_name_said_as_it_starts_fits_one_contact_or_is_asked_about(first: str, second: str) -> None:
    one = ContactIndex([{"id": "x", "name": f"{first} {second} kisumu", "phone_number": "0700000001"}])
    r = parse(f"send 500 to {first} {second}", one)
    assert r.contact_id == "x" and r.confident
    two = ContactIndex(
        [
            {"id": "x", "name": f"{first} {second} kisumu", "phone_number": "0700000001"},
            {"id": "y", "name": f"{first} {second} nakuru", "phone_number": "0700000002"},
        ]
    )
    r = parse(f"send 500 to {first} {second}", two)
    assert not r.confident and set(r.candidates) == {"x", "y"}


# ------------------------------------------------------------------------------ grouped bank accounts
@PROPS
@given(
    bank=st.sampled_from(sorted(bank_phrases())),
    groups=st.lists(st.text(alphabet="0123456789", min_size=3, max_size=4), min_size=2, max_size=4),
    amount=st.integers(1, 250),
    register=st.sampled_from(
        ["send {a} to {bank} {acc}", "tuma {a} kwa {bank} {acc}", "weka {a} kwa {bank} {acc}"]
    ),
)
def test_an_account_in_groups_after_a_bank_is_kept_whole(
    bank: str, groups: list[str], amount: int, register: str
) -> None:
    account = "".join(groups)
    assume(len(account) <= 20)
    text = register.format(a=amount * 100, bank=bank, acc=" ".join(groups))
    r = parse(text, BOOK)
    assert r.account in ("", account), (text, r.account)  # never a piece of it
    if r.confident:
        assert r.account == account and r.amount == Decimal(amount * 100), text


# --------------------------------------------------------------------------------------------- language
PRODUCTS = ["Lipa na M-Pesa", "Pochi la Biashara", "M-Shwari", "Fuliza"]


@PROPS
@given(product=st.sampled_from(PRODUCTS), amount=st.integers(1, 9999))
def test_a_product_name_inside_english_stays_english(product: str, amount: int) -> None:
    for text in (
        f"send {amount} to mama using {product}",
        f"how do I use {product}",
        f"is {product} working",
    ):
        assert parse(text, BOOK).language == "en", text


@PROPS
@given(
    noun=st.sampled_from(["balance", "statement", "update", "account", "transactions"]),
    frame=st.sampled_from(
        ["{n} yangu iko ngapi", "nipe {n} yangu", "check {n} yangu", "nionyeshe {n} ya leo"]
    ),
)
def test_english_loan_words_in_swahili_grammar_are_swahili(noun: str, frame: str) -> None:
    text = frame.format(n=noun)
    assert parse(text, BOOK).language == "sw", text


@PROPS
@given(word=st.sampled_from(sorted(SLANG)), before=st.integers(1, 9), after=st.integers(1, 9))
def test_a_slang_word_with_a_count_on_both_sides_is_asked_about(word: str, before: int, after: int) -> None:
    """ "mbili soo tano": 2 x 100 + 5, or 2 and 500? Never a guess."""
    for text in (
        f"tuma {SW_UNITS[before]} {word} {SW_UNITS[after]} kwa mama",
        f"send {EN_UNITS[before]} {word} {SW_UNITS[after]} to mama",
    ):
        assert not confident(text), text


@PROPS
@given(word=st.sampled_from(sorted(w for w, v in SLANG.items() if v < 1000)), count=st.integers(100, 9999))
def test_a_written_count_past_99_never_multiplies_a_word_for_less_than_a_thousand(
    word: str, count: int
) -> None:
    for text in (f"tuma {word} {count} kwa mama", f"tuma {count} {word} kwa mama"):
        assert not confident(text), text


# ------------------------------------------------------------------- fillers anywhere in a corpus command
_CORPUS_INDEX = contacts_index()
_CONFIDENT = [c.text for c in cases() if parse(c.text, _CORPUS_INDEX).confident]
FILLERS = [
    "please",
    "tafadhali",
    "uhm",
    "like",
    "bana",
    "manze",
    "sasa",
    "basi",
    "ok",
    "fiti",
    "buda",
    "just",
]


def _frame(text: str) -> tuple[object, ...]:
    r = parse(text, _CORPUS_INDEX)
    return (
        r.type,
        r.amount,
        r.contact_id,
        r.phone,
        r.till,
        r.paybill,
        r.account,
        r.agent,
        r.store,
        r.bank_code,
    )


@PROPS
@given(text=st.sampled_from(_CONFIDENT), filler=st.sampled_from(FILLERS), data=st.data())
def test_a_filler_anywhere_never_changes_a_confident_command(
    text: str, filler: str, data: st.DataObject
) -> None:
    words = text.split()
    at = data.draw(st.integers(0, len(words)))
    said = " ".join([*words[:at], filler, *words[at:]])
    if parse(said, _CORPUS_INDEX).confident:
        assert _frame(said) == _frame(text), said


# ------------------------------------------------------------- non-command words inside a real command
FEE_REASONS = ["for school fees", "ni ya ada ya shule", "for the hospital charges", "juu ya fees za shule"]
PRICE_QUESTIONS = [
    "what are the fees",
    "are there charges?",
    "je kuna ada",
    "gharama ni ngapi",
    "how much is the fee",
]


@PROPS
@given(
    command=st.sampled_from(COMMANDS),
    who=st.sampled_from(sorted(WHO)),
    reason=st.sampled_from(FEE_REASONS),
    question=st.sampled_from(PRICE_QUESTIONS),
)
def test_a_fee_word_is_a_reason_inside_a_command_and_a_question_when_asked(
    command: tuple[str, int], who: str, reason: str, question: str
) -> None:
    template, amount = command
    base = template.format(who=who)
    r = parse(f"{base} {reason}", BOOK)
    assert (r.type, r.amount, r.contact_id) == ("send_phone", Decimal(amount), WHO[who]) and r.confident, (
        reason
    )
    for text in (f"{question}, {base}", f"{base}, {question}"):
        assert not confident(text), text
