"""What an exported expectation leaves out: sentences that name what differs on every run."""

from __future__ import annotations

import pytest

from voice_server.conversation.export import _stable


@pytest.mark.parametrize(
    "sentence",
    [
        "Done: KES 1,500 to Mwende Akinyi, M-Pesa receipt SBQ0C1H6MV, fee 15, balance 7,778.",
        "Done: KES 1,500 to Mwende Akinyi, M-Pesa receipt SMRPSZHUSC, fee 15, balance 7,778.",  # no digit
        "It settled at 14:05.",
    ],
)
def test_a_receipt_code_or_a_clock_time_is_not_expected(sentence: str) -> None:
    assert not _stable(sentence)


@pytest.mark.parametrize(
    "sentence",
    ["Send KES 700 to Mama (0712 345 678)? Say yes or no.", "Your balance is KES 7,778.", "Pay bill 888880."],
)
def test_a_sentence_that_is_the_same_every_run_is_expected(sentence: str) -> None:
    assert _stable(sentence)
