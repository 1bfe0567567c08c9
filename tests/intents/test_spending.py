"""spending_summary: a question about money spent, in any register, any period and for any recipient."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from intents import ContactIndex, parse
from intents.models import Period
from intents.spending import spending_words
from intents.vocabulary import load_yaml
from tests.intents.test_properties import PROPS

INDEX = ContactIndex(
    [
        {"id": "m", "name": "Mary Wambui", "phone_number": "0733444555", "nickname": "Mama"},
        {"id": "o", "name": "Daniel Otieno", "phone_number": "0722333444", "nickname": None},
    ]
)
PERIODS: dict[str, list[str]] = load_yaml("spending.yaml")["periods"]
PHRASES = [(period, phrase) for period, phrases in PERIODS.items() for phrase in phrases]
# (template, register): {p} is the period, {r} the recipient phrase (may be empty).
EN = ["how much did I spend{r} {p}", "how much have I sent{r} {p}", "how much money did I pay{r} {p}"]
SW = ["nimetumia pesa ngapi{r} {p}", "nimetuma kiasi gani{r} {p}", "{p} nimelipa pesa ngapi{r}"]
SHENG = ["nimespend doh ngapi{r} {p}", "manze nimetuma ganji ngapi{r} {p}"]
RECIPIENTS = {
    "": {},
    " to mama": {"contact_id": "m", "phone": "254733444555"},
    " kwa Daniel Otieno": {"contact_id": "o", "phone": "254722333444"},
    " to till 445566": {"till": "445566"},
    " kwa paybill 247247": {"paybill": "247247"},
    " to 0722 333 444": {"phone": "254722333444", "contact_id": "o"},
}


@PROPS
@given(
    template=st.sampled_from(EN + SW + SHENG),
    said=st.sampled_from(PHRASES),
    recipient=st.sampled_from(sorted(RECIPIENTS)),
)
def test_any_period_any_recipient_any_register(template: str, said: tuple[str, str], recipient: str) -> None:
    period, phrase = said
    text = template.format(p=phrase, r=recipient)
    r = parse(text, INDEX)
    assert r.type == "spending_summary", text
    assert r.period == period, text
    assert r.amount is None and not r.missing and not r.errors, text
    for key, want in RECIPIENTS[recipient].items():
        assert getattr(r, key) == want, (text, key)
    assert r.intent is not None and r.intent.type == "spending_summary"


@PROPS
@given(template=st.sampled_from(EN + SW + SHENG), amount=st.integers(1, 250_000))
def test_a_question_that_names_an_amount_is_never_a_spending_summary(template: str, amount: int) -> None:
    text = template.format(p="this week", r=f" {amount} bob to mama")
    assert parse(text, INDEX).type != "spending_summary", text


def test_no_period_said_is_this_month() -> None:
    for text in ("how much have I spent", "nimetumia pesa ngapi", "nimespend doh ngapi"):
        r = parse(text, INDEX)
        assert (r.type, r.period) == ("spending_summary", "this_month"), text


def test_the_longest_period_phrase_wins() -> None:
    """ "wiki jana" is last week, never yesterday ("jana")."""
    assert parse("nimetumia pesa ngapi wiki jana", INDEX).period == "last_week"
    assert parse("nimetumia pesa ngapi mwezi jana", INDEX).period == "last_month"


def test_two_periods_lower_the_confidence() -> None:
    one = parse("how much did I send to mama this week", INDEX)
    two = parse("how much did I send to mama this week and last week", INDEX)
    assert two.confidence < one.confidence


def test_an_unknown_name_is_asked_for_not_dropped() -> None:
    """A total "to Samuel" is not the total to everyone: nobody of that name is saved, so ask."""
    r = parse("how much did I send to Samuel last week", INDEX)
    assert r.type == "spending_summary" and r.missing == ["recipient"] and r.intent is None


def test_a_price_question_is_not_spending() -> None:
    for text in ("how much did it cost to send to mama", "ni gharama ngapi kutuma kwa mama"):
        assert parse(text, INDEX).type != "spending_summary", text


def test_periods_in_the_data_are_the_specs() -> None:
    assert set(PERIODS) == set(Period.__args__)  # type: ignore[attr-defined]
    assert spending_words().periods.find(["wiki", "iliyopita"]) == ["last_week"]
