"""The language a client says it speaks when it connects (`conversation_initiation_client_data`'s
`dynamic_variables.language`, as the ElevenLabs SDKs send it): the greeting and the answers that follow are in
it until the person speaks another; anything but en or sw leaves the session's own language."""

from __future__ import annotations

from tests.server_conv.conftest import MakeUser, Server
from tests.server_conv.wsclient import Conv, mint, tool

SW_GREETING = "Habari! Ungependa kufanya nini?"
EN_GREETING = "Hello! What would you like to do?"


async def test_the_language_a_client_connects_with_is_the_greetings_and_the_answers(
    server: Server, make_user: MakeUser
) -> None:
    user = await make_user()
    session = await mint(server.url, user.token)  # no language: the session starts in English
    conv, greeting = await Conv.open(session["ws_url"], dynamic_variables={"language": "sw"})
    assert greeting.said.startswith(SW_GREETING) and greeting.summary["language"] == "sw"
    await conv.close()

    # The next answer (here a tool, on the same session state) is still in Swahili.
    status, balance = await tool(
        server.url, session["session_token"], "get_balance", {"session_id": session["session_id"]}
    )
    assert status == 200 and balance["language"] == "sw", balance

    # Until the person speaks English.
    conv, _ = await Conv.open(session["ws_url"], dynamic_variables={"language": "sw"})
    answer = await conv.say("what is my balance")
    assert answer.summary["language"] == "en", answer.events
    await conv.close()


async def test_a_session_minted_in_swahili_is_greeted_in_english_when_the_client_says_en(
    server: Server, make_user: MakeUser
) -> None:
    user = await make_user()
    session = await mint(server.url, user.token, language="sw")
    conv, greeting = await Conv.open(session["ws_url"], dynamic_variables={"language": "en"})
    assert greeting.said.startswith(EN_GREETING) and greeting.summary["language"] == "en"
    await conv.close()


async def test_no_language_or_an_unknown_one_keeps_the_sessions_language(
    server: Server, make_user: MakeUser
) -> None:
    user = await make_user()
    session = await mint(server.url, user.token, language="sw")
    for variables in ({}, {"language": "fr"}, {"language": ["sw"]}, {"language": "'; DROP TABLE x; --"}):
        conv, greeting = await Conv.open(session["ws_url"], dynamic_variables=variables)
        assert greeting.said.startswith(SW_GREETING), (variables, greeting.said)
        await conv.close()
