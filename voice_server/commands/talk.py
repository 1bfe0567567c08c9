"""`ongea-pesa talk [--server URL] [--token T]`: a terminal client for a person, over the same conversation
WebSocket as the app. Type what you would say; the proposal card shows with [c]onfirm / [x] cancel; a PIN is
typed hidden. Without a token it asks the server for a demo user (offered on the embedded defaults).
"quit" (or a goodbye to the assistant) ends it cleanly, Ctrl-C at once; a receipt still `processing` is
updated when M-Pesa answers."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import json
import queue
import signal
import sys
import threading
from collections.abc import Coroutine
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
    terminal = _terminal_state()
    try:
        return run_loop(_interruptible(talk(args.server.rstrip("/"), args.token)))
    except (KeyboardInterrupt, asyncio.CancelledError):
        print(file=sys.stderr)  # Ctrl-C: out at once (a prompt waiting on the terminal does not hold it)
        return 130
    except (OSError, aiohttp.ClientError, websockets.WebSocketException) as exc:
        print(f"talk: cannot reach {args.server}: {exc}", file=sys.stderr)
        return 1
    finally:
        _restore_terminal(terminal)


def _terminal_state() -> list[Any] | None:
    """The terminal's settings, to put back if talk ends while a hidden PIN prompt has turned echo off."""
    try:
        import termios

        return termios.tcgetattr(sys.stdin.fileno()) if sys.stdin.isatty() else None
    except (ImportError, OSError, ValueError):
        return None


def _restore_terminal(state: list[Any] | None) -> None:
    if state is None:
        return
    with contextlib.suppress(ImportError, OSError, ValueError):
        import termios

        termios.tcsetattr(sys.stdin.fileno(), termios.TCSADRAIN, state)


# What a person calls each kind of payment (the card never shows the internal type name).
TYPE_WORDS = {
    "send_phone": "Send money",
    "buy_goods_pochi": "Pay Pochi la Biashara",
    "buy_goods_till": "Buy goods",
    "paybill": "Pay bill",
    "withdraw": "Withdraw cash",
    "bank_to_mpesa": "Bank to M-Pesa",
    "mpesa_to_bank": "M-Pesa to bank",
}
STATUS_WORDS = {
    "processing": "sent, M-Pesa is confirming",
    "completed": "completed",
    "failed": "failed, money returned",
}
# Ends talk here without a word to the assistant (a goodbye to the assistant ends it too, after its answer).
QUIT_WORDS = ("/quit", "/exit", "quit", "exit")


def _card(params: dict[str, Any]) -> str:
    recipient = params.get("recipient_name") or next(
        (params[k] for k in ("phone", "till", "paybill", "agent", "bank_code") if params.get(k)), ""
    )
    what = TYPE_WORDS.get(str(params.get("type", "")), str(params.get("type", "")))
    lines = [
        f"  | {what}  {recipient}".rstrip(),
        f"  | amount {params.get('amount')}  fee {params.get('fee')}  total {params.get('total')}",
        "  | [c] confirm   [x] cancel   (or say yes / no)",
    ]
    return "\n".join(["  +---- proposal ----", *lines])


FINAL = ("completed", "failed")
EXIT_WITHIN = 3.0  # seconds talk gives the server to end the session when it quits


def _receipt(status: object, balance: object) -> str:
    return f"  [receipt] {STATUS_WORDS.get(str(status), status)}  balance {balance}"


class Prompter:
    """Reads the terminal on a daemon thread, one prompt at a time: a read still waiting never holds the
    process (Ctrl-C, or the server ending the conversation while the prompt is up, ends talk at once)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.requests: queue.Queue[tuple[str, bool, asyncio.Future[str | None]]] = queue.Queue()
        threading.Thread(target=self._read, name="talk-terminal", daemon=True).start()

    def _read(self) -> None:
        while True:
            prompt, hidden, future = self.requests.get()
            try:
                text: str | None = getpass.getpass(prompt) if hidden else input(prompt)
            except (EOFError, OSError, KeyboardInterrupt):
                text = None
            self.loop.call_soon_threadsafe(_settle, future, text)

    async def ask(self, prompt: str, *, hidden: bool = False) -> str | None:
        """The line typed (None at the end of input)."""
        future: asyncio.Future[str | None] = self.loop.create_future()
        self.requests.put((prompt, hidden, future))
        return await future


def _settle(future: asyncio.Future[str | None], text: str | None) -> None:
    if not future.done():
        future.set_result(text)


class Talk:
    """One person's conversation. Every message sent waits for its turn to end, so whatever ends a turn (the
    turn's last response, an `error`, the connection closing) must set `turn_done`, or the prompt never
    comes back."""

    def __init__(
        self, ws: Any, http: aiohttp.ClientSession | None = None, server: str = "", token: str = ""
    ) -> None:
        self.ws = ws
        self.http, self.server, self.token = http, server, token
        self.turn_done = asyncio.Event()
        self.gone = asyncio.Event()  # the conversation is over: the server ended it or the connection closed
        self.card: str | None = None  # the tool_call_id of the proposal card on screen
        self.pin_call: str | None = None
        self.closed = False
        self.ended = False  # the assistant ended the conversation (a goodbye)
        self.watches: set[asyncio.Task[None]] = set()
        # Transactions whose final receipt is on screen: the server pushes it when M-Pesa answers, and the
        # watch below is only the fallback, so whichever comes first prints it, once.
        self.settled: set[str] = set()

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
            if not self.ended:
                print(f"[connection closed{f' ({code})' if code else ''}]")
            self.closed = True
            self.turn_done.set()
            self.gone.set()

    async def on_event(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "ping":
            await self.send({"type": "pong", "event_id": event["ping_event"]["event_id"]})
        elif kind == "agent_response":
            body = event["agent_response_event"]
            if body.get("agent_response"):
                print(f"assistant: {body['agent_response']}")
            if "turn" in body:
                turn = body["turn"] or {}
                if not turn.get("proposal"):
                    self.card = None  # said no, expired, paid: the turn left no proposal to answer
                if turn.get("outcome") == "ended":
                    self.ended = True  # goodbye: nothing more to say in this conversation
                    self.gone.set()
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
                transaction_id = str(params.get("transaction_id", ""))
                final = params.get("status") in FINAL
                if final and transaction_id and transaction_id in self.settled:
                    return  # already printed by the fallback watch
                if final and transaction_id:
                    self.settled.add(transaction_id)
                reference = f"  M-Pesa {params['reference']}" if params.get("reference") else ""
                print(_receipt(params.get("status"), params.get("balance")) + reference)
                if params.get("text"):
                    print(f"  [receipt] {params['text']}")
                if params.get("status") == "processing":
                    self._follow(transaction_id)
            elif call["tool_name"] == "balance_update":
                print(f"  [balance] {params.get('balance')}")
        elif kind == "error":
            # The server answers a message it cannot take (or a turn that failed) with this alone: no turn
            # response follows, so this ends the turn.
            body = event.get("error_event") or {}
            print(f"  [error] {body.get('message') or body.get('code') or 'something went wrong'}")
            self.turn_done.set()

    def _follow(self, transaction_id: str) -> None:
        """A receipt still `processing` is updated when M-Pesa answers, as the app's is."""
        if self.http is None or not transaction_id:
            return
        task = asyncio.get_running_loop().create_task(self._watch(transaction_id))
        self.watches.add(task)
        task.add_done_callback(self.watches.discard)

    async def _watch(self, transaction_id: str, *, every: float = 1.0, limit: float = 120.0) -> None:
        assert self.http is not None
        headers = {"Authorization": f"Bearer {self.token}"}
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit
        with contextlib.suppress(aiohttp.ClientError, OSError, ValueError, KeyError):
            while loop.time() < deadline:
                await asyncio.sleep(every)
                async with self.http.get(
                    f"{self.server}/v1/transactions/{transaction_id}", headers=headers
                ) as r:
                    if r.status != 200:
                        return
                    status = (await r.json())["status"]
                if transaction_id in self.settled:
                    return  # the server told it first
                if status in FINAL:
                    await asyncio.sleep(every * 3)  # the server's own receipt, with M-Pesa's code, is due
                    if transaction_id in self.settled:
                        return
                    self.settled.add(transaction_id)
                    async with self.http.get(f"{self.server}/v1/me", headers=headers) as r:
                        balance = (await r.json()).get("wallet_balance") if r.status == 200 else "?"
                    print(f"\n{_receipt(status, balance)}", flush=True)
                    return

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

    async def _ask(self, prompter: Prompter, prompt: str, *, hidden: bool = False) -> str | None:
        """A line from the person, or None when the input ended or the conversation is over meanwhile."""
        asked = asyncio.ensure_future(prompter.ask(prompt, hidden=hidden))
        over = asyncio.ensure_future(self.gone.wait())
        await asyncio.wait({asked, over}, return_when=asyncio.FIRST_COMPLETED)
        over.cancel()
        if not asked.done():
            asked.cancel()
            print()
            return None
        return asked.result()

    async def repl(self, prompter: Prompter | None = None) -> None:
        prompter = prompter or Prompter(asyncio.get_running_loop())
        await self.turn_done.wait()  # the greeting
        while not self.closed and not self.ended:
            if self.pin_call is not None:
                call, self.pin_call = self.pin_call, None
                digits = await self._ask(prompter, "PIN (hidden): ", hidden=True)
                if digits is None:
                    return
                await self.turn(
                    {"type": "client_tool_result", "tool_call_id": call, "result": digits.strip()}
                )
                continue
            typed = await self._ask(prompter, "you: ")
            if typed is None:
                return
            line = typed.strip()
            if not line:
                continue
            if line.lower() in ("c", "x"):
                await self.tap("confirm" if line.lower() == "c" else "cancel")
            elif line.lower() in QUIT_WORDS:
                return
            else:
                await self.turn({"type": "user_message", "text": line})
        if self.ended and self.watches:
            # A receipt still being followed is worth its few seconds after a goodbye.
            await asyncio.wait(set(self.watches), timeout=30)


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


async def _interruptible(main: Coroutine[Any, Any, int]) -> int:
    """Ctrl-C cancels `main` through the loop's own signal handler, installed whatever talk inherited:
    started with SIGINT ignored (as a shell's background job is), Python keeps it ignored and asyncio's
    runner then installs no handler at all, so Ctrl-C did nothing."""
    task = asyncio.current_task()
    assert task is not None
    with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):  # (not the main thread)
        asyncio.get_running_loop().add_signal_handler(signal.SIGINT, task.cancel)
    return await main


async def talk(server: str, token: str | None) -> int:
    async with aiohttp.ClientSession() as http:
        token = token or await _demo_token(http, server)
        async with http.post(f"{server}/v1/sessions", headers={"Authorization": f"Bearer {token}"}) as r:
            body = await r.json()
            if r.status != 201:
                print(f"talk: {body.get('error', {}).get('message', r.status)}", file=sys.stderr)
                return 1
    headers = {"Authorization": f"Bearer {token}"}
    try:
        ws = await websockets.connect(body["ws_url"])
    except (OSError, websockets.WebSocketException) as exc:
        # The server announces its WebSocket on ONGEA_PUBLIC_URL, which may not be where --server reached it.
        where = body["ws_url"].split("?")[0]  # the session token stays out of the message
        print(
            f"talk: cannot open the conversation WebSocket {where} the server announced (it is built from "
            f"the server's ONGEA_PUBLIC_URL, which must reach it from here): {exc}",
            file=sys.stderr,
        )
        return 1
    async with aiohttp.ClientSession() as http, ws:
        session = Talk(ws, http, server, token)
        await session.send({"type": "conversation_initiation_client_data", "dynamic_variables": {}})
        reader = asyncio.get_running_loop().create_task(session.reader())
        try:
            await session.repl()
        finally:
            for task in session.watches:
                task.cancel()
            # Bounded, so that a slow or gone server never holds talk on its way out (Ctrl-C ends it at once;
            # the session then expires by itself, and a payment left waiting with it).
            with contextlib.suppress(TimeoutError, aiohttp.ClientError, OSError):
                async with asyncio.timeout(EXIT_WITHIN):
                    if not session.ended:
                        # Quitting here ends the session too, so a payment left waiting is voided at once.
                        await http.delete(f"{server}/v1/sessions/{body['session_id']}", headers=headers)
                    await ws.close()
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(reader, EXIT_WITHIN)
    return 0
