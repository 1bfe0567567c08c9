"""A minimal client of the conversation WebSocket for tests (and the shape `replay --server` speaks): it sends
a frame and gathers the server's events up to the end of the turn (the `agent_response` carrying `turn`)."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import websockets


@dataclass
class Turn:
    events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def summary(self) -> dict[str, Any]:
        for e in reversed(self.events):
            if e["type"] == "agent_response" and "turn" in e["agent_response_event"]:
                return dict(e["agent_response_event"]["turn"])
        raise AssertionError(f"no end of turn in {self.events}")

    @property
    def said(self) -> str:
        return " ".join(
            e["agent_response_event"]["agent_response"] for e in self.events if e["type"] == "agent_response"
        )

    def calls(self, name: str) -> list[dict[str, Any]]:
        return [
            e["client_tool_call"]
            for e in self.events
            if e["type"] == "client_tool_call" and e["client_tool_call"]["tool_name"] == name
        ]


class Conv:
    def __init__(self, ws: websockets.ClientConnection) -> None:
        self.ws = ws
        self.metadata: dict[str, Any] = {}

    @classmethod
    async def open(
        cls, ws_url: str, *, init: bool = True, dynamic_variables: dict[str, Any] | None = None
    ) -> tuple[Conv, Turn]:
        ws = await websockets.connect(ws_url, max_size=None)
        conv = cls(ws)
        if init:
            await conv.send(
                {"type": "conversation_initiation_client_data", "dynamic_variables": dynamic_variables or {}}
            )
        first = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert first["type"] == "conversation_initiation_metadata", first
        conv.metadata = first["conversation_initiation_metadata_event"]
        return conv, await conv.until_turn_end()

    async def send(self, obj: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(obj))

    async def recv(self, wait: float = 15) -> dict[str, Any]:
        """The next event that is not a ping (pings are answered), within `wait` seconds in all."""
        deadline = asyncio.get_running_loop().time() + wait
        while True:
            left = deadline - asyncio.get_running_loop().time()
            event = json.loads(await asyncio.wait_for(self.ws.recv(), max(left, 0.001)))
            if event["type"] == "ping":
                await self.send({"type": "pong", "event_id": event["ping_event"]["event_id"]})
                continue
            return dict(event)

    async def until_turn_end(self, wait: float = 15) -> Turn:
        turn = Turn()
        while True:
            event = await self.recv(wait)
            turn.events.append(event)
            if event["type"] == "agent_response" and "turn" in event["agent_response_event"]:
                return turn

    async def say(self, text: str) -> Turn:
        await self.send({"type": "user_message", "text": text})
        return await self.until_turn_end()

    async def answer(self, tool_call_id: str, result: str) -> Turn:
        await self.send(tool_result(tool_call_id, result))
        return await self.until_turn_end()

    async def close(self) -> None:
        await self.ws.close()


def tool_result(tool_call_id: str, result: str = "confirm") -> dict[str, Any]:
    """The app's answer to a card (a tap: "confirm" or "cancel"), as it sends it; for tests that send it
    without waiting for the turn (`Conv.answer` waits)."""
    return {"type": "client_tool_result", "tool_call_id": tool_call_id, "result": result, "is_error": False}


async def mint(server_url: str, user_token: str, **body: Any) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{server_url}/v1/sessions", json=body or None, headers={"Authorization": f"Bearer {user_token}"}
        ) as r:
            assert r.status == 201, await r.text()
            return dict(await r.json())


async def tool(
    server_url: str, session_token: str, name: str, body: dict[str, Any]
) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{server_url}/v1/tools/{name}", json=body, headers={"Authorization": f"Bearer {session_token}"}
        ) as r:
            return r.status, dict(await r.json())


async def propose_by_tool(
    server_url: str, session: dict[str, Any], amount: object, recipient: str
) -> dict[str, Any]:
    """A send_phone proposal through the agent's `propose_transaction` tool, as most tool tests start."""
    status, proposed = await tool(
        server_url,
        session["session_token"],
        "propose_transaction",
        {"session_id": session["session_id"], "type": "send_phone", "amount": amount, "recipient": recipient},
    )
    assert status == 200 and proposed["outcome"] == "proposed", proposed
    return proposed
