"""The seven recipient fields have one declaration (`intents.models.Recipient`) that the parser's result,
the ledger's request and row and the dialogue's drafts reuse, in the same order everywhere."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from intents.models import RECIPIENT_FIELDS, ParseResult, Recipient
from ledger.models import Proposal, ProposalRequest
from voice_server.dialogue.state import Draft, LiveProposal


@pytest.mark.parametrize("model", [ParseResult, ProposalRequest, Proposal, Draft, LiveProposal])
def test_every_model_with_a_recipient_takes_the_one_declaration(model: type[BaseModel]) -> None:
    assert issubclass(model, Recipient)
    names = list(model.model_fields)
    start = names.index(RECIPIENT_FIELDS[0])
    assert tuple(names[start : start + len(RECIPIENT_FIELDS)]) == RECIPIENT_FIELDS
    assert tuple(Recipient.model_fields) == RECIPIENT_FIELDS


def test_the_parse_result_keeps_the_spec_key_order() -> None:
    """The spec's output table: text, type, amount, the recipient fields, then the rest."""
    keys = list(ParseResult(text="x").model_dump(mode="json"))
    assert keys[:11] == ["text", "type", "amount", *RECIPIENT_FIELDS, "contact_id"]
