"""The rules of transcripts.md on the pure dialogue, turn by turn (the ledger's answers come from `Bank`)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from tests.dialogue.helpers import NOW, PID, WORLD, Bank, live, run, state_in
from voice_server.dialogue.events import (
    Committed,
    ConfirmRefused,
    PinEntry,
    PinResult,
    ProposalRefused,
    Tick,
    ToolConfirm,
    ToolPropose,
    Utterance,
)
from voice_server.dialogue.machine import step
from voice_server.dialogue.phases import Phase
from voice_server.dialogue.state import (
    Cancel,
    Confirm,
    EndSession,
    Note,
    Propose,
    Show,
    Speak,
)


def said(actions: list[object]) -> str:
    return " ".join(a.text for a in actions if isinstance(a, Speak))


def notes(actions: list[object]) -> list[Note]:
    return [a for a in actions if isinstance(a, Note)]


def test_read_back_names_the_contact_as_saved_with_fee_and_total() -> None:
    state, actions = run(state_in("idle"), Utterance("send 1,500 to mama"))
    assert state.phase == "read_back"
    text = said(actions)
    assert "KES 1,500" in text and "Mary Wambui" in text and "KES 30" in text and "KES 1,530" in text
    card = next(a for a in actions if isinstance(a, Show) and a.tool_name == "show_proposal")
    assert card.parameters["amount"] == "1500.00" and card.parameters["total"] == "1530.00"
    assert card.parameters["recipient_name"] == "Mary Wambui" and card.parameters["readback"]


def test_swahili_read_back_says_the_amount_in_words() -> None:
    state, actions = run(state_in("idle"), Utterance("tuma elfu moja mia tano kwa Mama"))
    assert state.language == "sw"
    assert "shilingi elfu moja mia tano" in said(actions)


def test_correction_revises_and_the_yes_confirms_the_new_version() -> None:
    bank = Bank()
    state, _ = run(state_in("idle"), Utterance("send 500 to mama"), bank)
    first = state.proposal
    assert first is not None
    state, actions = run(state, Utterance("no, make it 700"), bank)
    revise = next(a for a in actions if isinstance(a, Propose))
    assert revise.revise == first.proposal_id and revise.amount == Decimal("700")
    assert state.proposal is not None and state.proposal.version == 2
    assert "Okay, changed" in said(actions)
    state, actions = run(state, Utterance("yes"), bank)
    assert bank.committed == [(first.proposal_id, 2, True)]


def test_unclear_answers_are_asked_twice_then_the_third_cancels() -> None:
    state = state_in("read_back")
    for _ in range(2):
        state, actions = run(state, Utterance("purple elephants"))
        assert state.phase == "read_back" and not any(isinstance(a, Cancel) for a in actions)
    state, actions = run(state, Utterance("purple elephants"))
    assert state.phase == "idle"
    assert Cancel(PID, "not_understood") in actions
    assert notes(actions)[-1].cancelled


def test_a_clear_answer_resets_the_count_of_unclear_ones() -> None:
    state, _ = run(state_in("filling"), Utterance("purple"))
    state, _ = run(state, Utterance("elephants"))
    assert state.unclear == 2
    state, _ = run(state, Utterance("300"))
    assert state.phase == "read_back" and state.unclear == 0


def test_exactly_the_threshold_needs_no_pin_one_shilling_more_does() -> None:
    at = state_in("read_back", amount="1000")
    assert any(isinstance(a, Confirm) for a in step(at, Utterance("yes"), NOW, WORLD).actions)
    above = state_in("read_back", amount="1001")
    result = step(above, Utterance("yes"), NOW, WORLD)
    assert result.state.phase == "pin" and not any(isinstance(a, Confirm) for a in result.actions)
    assert Show("request_pin", {"proposal_id": str(PID)}) in result.actions


def test_no_pin_set_is_refused_before_read_back() -> None:
    # The dialogue does not decide it: it proposes, and the ledger refuses (sql/0019) before any read-back.
    state, actions = run(state_in("idle"), Utterance("send 1500 to mama"), Bank(pin_set=False))
    assert state.phase == "idle" and state.proposal is None
    assert notes(actions)[-1].rejected == "pin_not_set"
    assert "set a PIN in the app" in said(actions)


def test_bank_to_mpesa_needs_no_pin_even_without_one() -> None:
    bank = Bank(pin_set=False)
    state, _ = run(state_in("idle"), Utterance("deposit 5000 from equity"), bank)
    assert state.phase == "read_back"
    result = step(state, Utterance("yes"), NOW, WORLD)
    assert any(isinstance(a, Confirm) for a in result.actions)


def test_a_locked_pin_cancels_and_the_ledger_refuses_every_request_before_read_back() -> None:
    state = state_in("checking_pin")
    result = step(state, PinResult("locked", 0), NOW, WORLD)
    assert Cancel(PID, "pin_locked") in result.actions and result.state.phase == "idle"
    last_try = step(state, PinResult("wrong", 0), NOW, WORLD)
    assert notes(list(last_try.actions))[-1].rejected == "pin_locked"
    proposing = step(state_in("idle"), Utterance("send 100 to mama"), NOW, WORLD)
    assert proposing.state.phase == "proposing"
    refused = step(proposing.state, ProposalRefused("pin_locked"), NOW, WORLD)
    assert notes(list(refused.actions))[-1].rejected == "pin_locked" and refused.state.proposal is None
    assert "locked" in said(list(refused.actions))


def test_the_read_back_says_a_pin_is_needed_when_the_ledger_says_so() -> None:
    # Past the allowance, a small payment needs the PIN: the ledger's proposal says so, the dialogue follows.
    bank = Bank(no_pin_count=5)
    state, actions = run(state_in("idle"), Utterance("send 200 to mama"), bank)
    assert state.phase == "read_back" and state.proposal is not None and state.proposal.needs_pin
    assert "enter your PIN" in said(actions)
    card = next(a for a in actions if isinstance(a, Show) and a.tool_name == "show_proposal")
    assert card.parameters["needs_pin"] is True
    state, actions = run(state, Utterance("yes"), bank)
    assert state.phase == "pin" and not bank.committed
    state, actions = run(state, PinEntry("4321"), bank)
    assert len(bank.committed) == 1 and bank.committed[0][1:] == (1, True) and state.phase == "idle"


def test_a_confirmation_the_ledger_finds_needing_the_pin_goes_to_the_pin_step_for_the_same_proposal() -> None:
    state = state_in("confirming")
    result = step(state, ConfirmRefused("pin_required"), NOW, WORLD)
    assert result.state.phase == "pin" and result.state.proposal is not None
    assert result.state.proposal.proposal_id == PID and result.state.proposal.needs_pin
    assert not any(isinstance(a, Cancel) for a in result.actions)
    assert any(isinstance(a, Show) and a.tool_name == "request_pin" for a in result.actions)


def test_the_agents_confirm_tool_is_told_pin_required_and_nothing_is_confirmed() -> None:
    state = state_in("read_back", amount="1500")
    result = step(state, ToolConfirm(PID, 1), NOW, WORLD)
    assert not any(isinstance(a, Confirm) for a in result.actions)
    assert notes(list(result.actions))[-1].rejected == "pin_required"
    assert "finish it in the app" in said(list(result.actions))
    # The app then finishes the same proposal with the keypad.
    bank = Bank()
    state, _ = run(result.state, PinEntry("4321"), bank)
    assert bank.committed == [(PID, 1, True)]


def test_a_pin_said_aloud_is_never_read_and_never_kept() -> None:
    for phase, text in [
        ("pin", "seven three nine two"),
        ("pin", "pin 7 3 9 2"),
        ("pin", "saba tatu tisa mbili"),
        ("read_back", "my pin is 7392"),
        ("filling", "seven three nine two"),
        ("idle", "pin seven three nine two"),
    ]:
        state = state_in(phase)
        result = step(state, Utterance(text), NOW, WORLD)
        assert not any(isinstance(a, Propose | Confirm) for a in result.actions), (phase, text)
        assert result.state.phase == state.phase and result.state.draft == state.draft, (phase, text)
        assert "Type it in the app" in said(list(result.actions)) or "Iandike" in said(list(result.actions))
        stored = result.state.model_dump_json()
        assert "7392" not in stored and "seven" not in stored and "saba" not in stored, (phase, text)


def test_a_wrong_pin_says_how_many_tries_are_left() -> None:
    result = step(state_in("checking_pin"), PinResult("wrong", 3), NOW, WORLD)
    assert result.state.phase == "pin" and "3 tries left" in said(list(result.actions))


def test_the_pin_keeps_the_channel_of_the_confirmation() -> None:
    bank = Bank()
    state = state_in("read_back", amount="1500")
    from voice_server.dialogue.events import Tap

    state, _ = run(state, Tap("confirm", PID, 1), bank)
    state, _ = run(state, PinEntry("4321"), bank)
    assert bank.committed == [(PID, 1, False)]


def test_the_proposal_expires_after_its_time_and_a_late_yes_is_told_so() -> None:
    state = state_in("read_back")
    result = step(state, Tick(), NOW + timedelta(seconds=120), WORLD)
    assert Cancel(PID, "expired") in result.actions and result.state.phase == "idle"
    late = step(result.state, Utterance("yes"), NOW + timedelta(seconds=130), WORLD)
    assert not any(isinstance(a, Confirm) for a in late.actions)
    assert notes(list(late.actions))[-1].rejected == "expired"
    direct = step(state, Utterance("yes"), NOW + timedelta(seconds=121), WORLD)
    assert not any(isinstance(a, Confirm) for a in direct.actions)


def test_the_session_expiry_ends_everything() -> None:
    result = step(state_in("pin"), Utterance("yes"), NOW + timedelta(minutes=15), WORLD)
    assert result.state.phase == "ended"
    assert Cancel(PID, "session_expired") in result.actions
    assert EndSession("expired") in result.actions


def test_answers_follow_the_language_spoken() -> None:
    state, actions = run(state_in("idle"), Utterance("send 500 to mama"))
    assert state.language == "en"
    state, actions = run(state, Utterance("hapana, fanya mia saba"))
    assert state.language == "sw" and all(a.language == "sw" for a in actions if isinstance(a, Speak))
    state, actions = run(state, Utterance("yes"))
    assert state.language == "en"


def test_a_recognisers_language_hint_wins() -> None:
    state, _ = run(state_in("idle"), Utterance("send 500 to mama", language="sw"))
    assert state.language == "sw"


def test_choice_between_near_identical_contacts() -> None:
    state, actions = run(state_in("idle"), Utterance("send 200 to John"))
    assert state.phase == "choosing" and "John Doe or John Kamau" in said(actions)
    state, actions = run(state, Utterance("Kamau"))
    assert state.proposal is not None and state.proposal.phone == "254722111222"


def test_bank_deposit_receipt_names_paybill_and_reference_when_the_ledger_gives_them() -> None:
    state, _ = run(state_in("idle"), Utterance("deposit 2000 from equity"))
    assert state.proposal is not None
    confirming = state.model_copy(update={"phase": Phase.CONFIRMING})
    p = state.proposal
    with_ref = Committed(
        p.proposal_id,
        1,
        "bank_to_mpesa",
        p.amount,
        p.fee,
        "processing",
        True,
        Decimal("0"),
        Decimal("0"),
        {"paybill": "4123456", "reference": "OP7K2Q"},
    )
    result = step(confirming, with_ref, NOW, WORLD)
    assert "paybill 4123456" in said(list(result.actions)) and "OP7K2Q" in said(list(result.actions))
    neutral = step(
        confirming,
        Committed(
            p.proposal_id,
            1,
            "bank_to_mpesa",
            p.amount,
            p.fee,
            "processing",
            True,
            Decimal("0"),
            Decimal("0"),
        ),
        NOW,
        WORLD,
    )
    assert "when the money arrives" in said(list(neutral.actions))


def test_the_propose_tool_is_validated_like_speech() -> None:
    for fields, code in (
        ({"type": "send_phone", "amount": "-5", "recipient": "Mama"}, "amount_not_positive"),
        ({"type": "send_phone", "amount": "500", "phone": "0712"}, "invalid_phone"),
        ({"type": "send_phone", "amount": "1e9", "recipient": "Mama"}, "amount_above_limit"),
        ({"type": "send_phone", "amount": "NaN", "recipient": "Mama"}, "invalid_number"),
    ):
        result = step(state_in("idle"), ToolPropose(fields), NOW, WORLD)
        assert notes(list(result.actions))[-1].rejected == code, fields
        assert not any(isinstance(a, Propose) for a in result.actions)
    ok = step(
        state_in("idle"), ToolPropose({"type": "send_phone", "amount": 300, "recipient": "mary"}), NOW, WORLD
    )
    propose = next(a for a in ok.actions if isinstance(a, Propose))
    assert propose.fields == {"phone": "254733444555"} and propose.amount == Decimal("300")
    unknown = step(state_in("idle"), ToolPropose({"type": "airtime", "amount": "50"}), NOW, WORLD)
    assert notes(list(unknown.actions))[-1].rejected == "not_understood"


def test_a_sql_looking_name_is_just_a_name_nobody_has() -> None:
    result = step(state_in("idle"), Utterance("send 500 to Robert'); DROP TABLE contacts;--"), NOW, WORLD)
    assert not any(isinstance(a, Propose) for a in result.actions)
    assert result.state.phase in ("filling", "idle")


def test_the_live_proposal_survives_a_balance_question() -> None:
    state, actions = run(state_in("read_back"), Utterance("what's my balance"))
    assert state.phase == "read_back" and state.proposal == live()
    assert "Shall I go ahead" in said(actions)


def test_a_yes_the_recogniser_is_unsure_of_is_asked_again() -> None:
    unsure = step(state_in("read_back"), Utterance("yes", asr_confidence=0.3), NOW, WORLD)
    assert not any(isinstance(a, Confirm) for a in unsure.actions)
    assert unsure.state.phase == "read_back"
    sure = step(state_in("read_back"), Utterance("yes", asr_confidence=92), NOW, WORLD)
    assert any(isinstance(a, Confirm) for a in sure.actions)


def test_digits_said_while_the_pin_is_awaited_are_never_used() -> None:
    for text in ("4321", "4 3 2 1"):
        result = step(state_in("pin"), Utterance(text), NOW, WORLD)
        assert result.state.phase == "pin" and result.state.proposal == live("1500")
        assert not any(isinstance(a, Propose) for a in result.actions)
        assert "4321" not in said(list(result.actions))


def test_send_it_is_a_yes() -> None:
    result = step(state_in("read_back"), Utterance("yes, send it"), NOW, WORLD)
    assert any(isinstance(a, Confirm) for a in result.actions)
