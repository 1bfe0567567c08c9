"""`ongea-pesa talk [--server URL] [--token T]`: a terminal client for a person, over the same conversation
WebSocket as the app. Type what you would say; the proposal card shows with [c]onfirm / [x] cancel; a PIN is
typed hidden. Without a token it asks the server for a demo user (offered on the embedded defaults)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import json
import sys
from typing import Any

import aiohttp
import websockets

from voice_server.loop import run as run_loop
from voice_server.page_routes import DEMO_ROUTE


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("talk", help="talk to the assistant from the terminal (same WebSocket as the app)")
    p.add_argument(
        "--server", default="http://127.0.0.1:8080", help="server URL (default http://127.0.0.1:8080)"
    )
    p.add_argument("--token", help="user token (default: a new demo user, on the embedded defaults)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        return run_loop(talk(args.server.rstrip("/"), args.token))
    except KeyboardInterrupt:
        return 0
    except (OSError, aiohttp.ClientError, websockets.WebSocketException) as exc:
        print(f"talk: cannot reach {args.server}: {exc}", file=sys.stderr)
        return 1


def _card(params: dict[str, Any]) -> str:
    recipient = params.get("recipient_name") or next(
        (params[k] for k in ("phone", "till", "paybill", "agent", "bank_code") if params.get(k)), ""
    )
    lines = [
        f"  | {params.get('type', '')}  {recipient}".rstrip(),
        f"  | amount {params.get('amount')}  fee {params.get('fee')}  total {params.get('total')}",
        "  | [c] confirm   [x] cancel   (or say yes / no)",
    ]
    return "\n".join(["  +---- proposal ----", *lines])


class Talk:
    """One person's conversation. Every message sent waits for its turn to end, so whatever ends a turn (the
    turn's last response, an `error`, the connection closing) must set `turn_done`, or the prompt never
    comes back."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.turn_done = asyncio.Event()
        self.card: str | None = None  # the tool_call_id of the proposal card on screen
        self.pin_call: str | None = None
        self.closed = False

    async def send(self, obj: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(obj))

    async def reader(self) -> None:
        try:
            async for raw in self.ws:
                await self.on_event(json.loads(raw))
        except websockets.ConnectionClosed:
            pass
        finally:
            code = self.ws.close_code
            print(f"[connection closed{f' ({code})' if code else ''}]")
            self.closed = True
            self.turn_done.set()

    async def on_event(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "ping":
            await self.send({"type": "pong", "event_id": event["ping_event"]["event_id"]})
        elif kind == "agent_response":
            body = event["agent_response_event"]
            if body.get("agent_response"):
                print(f"assistant: {body['agent_response']}")
            if "turn" in body:
                if not (body["turn"] or {}).get("proposal"):
                    self.card = None  # said no, expired, paid: the turn left no proposal to answer
                self.turn_done.set()
        elif kind == "client_tool_call":
            call = event["client_tool_call"]
            params = call.get("parameters", {})
            if call["tool_name"] == "show_proposal":
                self.card = call["tool_call_id"]
                print(_card(params))
            elif call["tool_name"] == "request_pin":
                self.pin_call = call["tool_call_id"]
            elif call["tool_name"] == "show_receipt":
                self.card = None
                print(f"  [receipt] {params.get('status')}  balance {params.get('balance')}")
            elif call["tool_name"] == "balance_update":
                print(f"  [balance] {params.get('balance')}")
        elif kind == "error":
            # The server answers a message it cannot take (or a turn that failed) with this alone: no turn
            # response follows, so this ends the turn.
            body = event.get("error_event") or {}
            print(f"  [error] {body.get('message') or body.get('code') or 'something went wrong'}")
            self.turn_done.set()

    async def turn(self, obj: dict[str, Any]) -> None:
        self.turn_done.clear()
        await self.send(obj)
        await self.turn_done.wait()

    async def tap(self, answer: str) -> None:
        """The card's key. The server takes one tap per card, so the card is gone once tapped (a new one is
        shown if the payment is proposed again); with no card there is nothing to send."""
        if self.card is None:
            print("  (no proposal on screen: nothing to confirm or cancel)")
            return
        card, self.card = self.card, None
        await self.turn({"type": "client_tool_result", "tool_call_id": card, "result": answer})

    async def repl(self) -> None:
        loop = asyncio.get_running_loop()
        await self.turn_done.wait()  # the greeting
        while not self.closed:
            if self.pin_call is not None:
                call, self.pin_call = self.pin_call, None
                digits = await loop.run_in_executor(None, getpass.getpass, "PIN (hidden): ")
                await self.turn(
                    {"type": "client_tool_result", "tool_call_id": call, "result": digits.strip()}
                )
                continue
            try:
                line = (await loop.run_in_executor(None, input, "you: ")).strip()
            except EOFError:
                return
            if not line:
                continue
            if line.lower() in ("c", "x"):
                await self.tap("confirm" if line.lower() == "c" else "cancel")
            elif line.lower() in ("/quit", "/exit"):
                return
            else:
                await self.turn({"type": "user_message", "text": line})


async def _demo_token(http: aiohttp.ClientSession, server: str) -> str:
    async with http.post(f"{server}{DEMO_ROUTE}", json={}) as r:
        if r.status != 201:
            raise SystemExit(
                "talk: this server offers no demo user (it is not on the embedded defaults); pass --token "
                "(ongea-pesa user add --phone ... --json prints one)"
            )
        user = await r.json()
    contacts = ", ".join(f"{c['name']} ({c['nickname']})" for c in user["contacts"])
    print(f"Demo user {user['phone']}: balance {user['balance']}, PIN {user['pin']}, contacts {contacts}")
    return str(user["token"])


async def talk(server: str, token: str | None) -> int:
    async with aiohttp.ClientSession() as http:
        token = token or await _demo_token(http, server)
        async with http.post(f"{server}/v1/sessions", headers={"Authorization": f"Bearer {token}"}) as r:
            body = await r.json()
            if r.status != 201:
                print(f"talk: {body.get('error', {}).get('message', r.status)}", file=sys.stderr)
                return 1
    async with websockets.connect(body["ws_url"]) as ws:
        session = Talk(ws)
        await session.send({"type": "conversation_initiation_client_data", "dynamic_variables": {}})
        reader = asyncio.get_running_loop().create_task(session.reader())
        try:
            await session.repl()
        finally:
            await ws.close()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
    return 0
