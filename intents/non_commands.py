"""What is not a payment command: questions (the balance, the history, how much was spent), negations,
stories of the past, hearsay and services the product does not offer. A payment is never made from these.
"""

from __future__ import annotations

from itertools import pairwise
from typing import Any

from intents import confidence as conf
from intents import spending
from intents.items import Item, is_phone
from intents.models import ParseResult
from intents.recipients import RecipientReader
from intents.slots import name_spans, typed_intent
from intents.utterance import VOCAB


class QuestionReader(RecipientReader):
    """Items -> a query (balance, history, spending), "not a command", or "" (read it as a command)."""

    def _query(self, query: str | None) -> ParseResult:
        if query is None:
            return ParseResult(text=self.text, confidence=0, language=self.language)
        fields: dict[str, Any] = {"text": self.text, "type": query, "intent": typed_intent(query, {})}
        fields["language"] = self.language
        return ParseResult(**fields, confidence=conf.score(self.ev, actionable=True))

    def _spending(self, items: list[Item]) -> ParseResult | None:
        """A question about money spent ("how much did I send to Mama last week"): the period and whoever
        it was spent on; or a question about one payment named by its amount: the history. Else None."""
        roles = {it.role for it in items if it.kind == "role"}
        if roles & {"unsupported", "negation"}:
            return None
        s = self.slots(items)
        if spending.asks_about_payment(self.tokens, amount=bool(s.amounts)):
            return self._query("transaction_history")
        if not spending.asks_spending(self.tokens, amount=bool(s.amounts), recipient=True):
            return None  # not even with a recipient named: no need to look for one
        said = spending.period_words(self.tokens)  # "since january": the period, never a name
        question = [
            [w for w in sp if w not in said and not spending.is_spending_word(w)] for sp in name_spans(items)
        ]
        spans = [sp for sp in question if sp]
        best = self._contact(spans) if spans else None
        self._biller(s)
        recipient = bool(best or s.phones or s.till or s.paybill)
        if not spending.asks_spending(self.tokens, amount=bool(s.amounts), recipient=recipient):
            return None
        ev = self.ev
        periods = spending.periods_said(self.tokens)
        ev.conflicts += max(0, len(periods) - 1)  # "this week ... last week": which one? Ask.
        out: dict[str, Any] = {"text": self.text, "type": "spending_summary"}
        out["period"] = periods[0] if periods else spending.DEFAULT_PERIOD
        missing: list[str] = []
        errors: list[str] = []
        named = [k for k in ("phones", "till", "paybill") if getattr(s, k)] + (["contact"] if best else [])
        if s.phones:
            self._recipient(s, None, out, missing, errors)
        elif s.till:
            self._business(s.till, "till", out, missing, errors, s)
        elif s.paybill:
            self._business(s.paybill, "paybill", out, missing, errors, s)
        elif best is not None:
            self._recipient(s, best, out, missing, errors)
        elif s.billers:
            missing.append("paybill")  # "what did I pay KPLC": prepaid or postpaid? Its number decides.
        elif to_someone(items):
            missing.append("recipient")  # "how much did I send to Samuel": nobody of that name is saved
        ev.conflicts += max(0, len(named) - 1)
        ev.unknown = self.overflow + sum(len(sp) for sp in spans) - (best[2] if best else 0)
        out["missing"] = list(dict.fromkeys(missing))
        out["errors"] = list(dict.fromkeys(errors))
        intent = typed_intent("spending_summary", out) if not missing and not errors else None
        out["confidence"] = conf.score(ev, actionable=intent is not None)
        return ParseResult(**out, intent=intent, language=self.language)

    def _after_question(self, items: list[Item]) -> list[Item]:
        """ "what are the fees... actually, just send 500 to mama": a question dropped for a whole command
        after a correction marker; the command is read alone. Anything asked after the marker keeps it all."""
        for c in range(len(items) - 1, 0, -1):
            if items[c].role != "correction":
                continue
            before, after = items[:c], items[c + 1 :]
            said = {it.role for it in after if it.kind == "role"}
            asked = {it.role for it in before if it.kind == "role"} & {"question", "cost", "quantity"}
            verb = said & {"send", "pay", "withdraw", "buy_goods"}
            whole = verb and any(it.kind == "chunk" for it in after)
            if asked and whole and not said & {"question", "cost", "quantity", "negation", "correction"}:
                return after
            break
        return items

    def _asks_price(self, command: bool) -> bool:
        """A fee or cost word asks the price, unless it is only the reason inside a whole command ("send 5000
        to mama for school fees", "lipa ada ya shule"): there a question word is needed to make it one."""
        return not command or "?" in self.text or self.price_asked

    def _price_words(self, items: list[Item]) -> bool:
        """Was a question word said ("what", "how", "je", "?"), before corrections drop any filler?"""
        asked = VOCAB.cost_questions
        return any(it.text in asked or it.text.split()[0] in asked for it in items if it.text)

    def _not_a_command(self, items: list[Item]) -> str:
        """Questions, negations, stories of the past and services we do not offer are never commands.

        Returns "null" for those, a query type for a question about past payments ("nimetuma pesa kwa
        nani?") or the balance ("mpesa yangu iko na ngapi"), and "" for anything else.
        """
        roles = {it.role for it in items if it.kind == "role"}
        amount = any(it.kind == "chunk" for it in items)
        verbs = roles & {"send", "pay", "withdraw", "buy_goods"}
        vocab = VOCAB
        if "cost" in roles and self._asks_price(bool(verbs and amount)):
            roles.add("question")  # "what are the fees", "gharama ni ngapi": a question about the price
        past = any(
            (it.text in vocab.past_tense and it.text not in vocab.have_words)
            or (it.kind == "word" and told(it.text))
            for it in items
        )
        if past and not amount and roles & {"balance", "quantity"}:
            return "transaction_history"  # "nimetumia pesa ngapi wiki hii": how much I have spent
        if "unsupported" in roles:
            return "null"  # airtime, loans, M-Shwari and Fuliza (their statements too), reminders
        if roles & {"history", "balance"} and not amount:
            if "history" in roles or not (verbs or roles & {"question", "negation", "unsupported"}):
                return ""  # "who did I pay yesterday?", "what payments have i made?": a query, asked as one
        asks_who = not amount and any(it.text in VOCAB.interrogatives for it in items)
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
                if told(w):
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
        if "quantity" in roles and not amount and not slots and not to_someone(items):
            return "check_balance"  # "how much cash do I have on mpesa", "pesa kwa mpesa ni ngapi"
        return ""


def told(word: str) -> bool:
    """A Swahili payment verb in the past or conditional ("nilituma", "alinitumia", "nikituma")."""
    return word not in VOCAB.verb_exceptions and bool(VOCAB.swahili_past.match(word))


def to_someone(items: list[Item]) -> bool:
    """ "... to <a name>": "to"/"kwa" followed by words the vocabulary does not know."""
    return any(a.role == "to" and b.kind == "word" for a, b in pairwise(items))
