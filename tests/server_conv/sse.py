"""A minimal Server-Sent Events client for tests and benches: `GET /v1/events` over real HTTP, events parsed
as the EventSource specification reads them (id, event, data; comments skipped)."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

import aiohttp


@dataclass(frozen=True)
class Sse:
    id: str
    event: str
    data: dict[str, Any]

    @property
    def position(self) -> tuple[int, int]:
        xid, _, ident = self.id.partition("-")
        return int(xid), int(ident)


class EventStream:
    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self.response = response

    @classmethod
    async def open(
        cls, http: aiohttp.ClientSession, base: str, token: str, last_event_id: str | None = None
    ) -> EventStream:
        headers = {"Authorization": f"Bearer {token}", "Accept": "text/event-stream"}
        if last_event_id is not None:
            headers["Last-Event-ID"] = last_event_id
        response = await http.get(f"{base}/v1/events", headers=headers, timeout=aiohttp.ClientTimeout(None))
        assert response.status == 200, (response.status, await response.text())
        return cls(response)

    async def next(self, wait: float = 30) -> Sse:
        """The next event (not a comment or a bare `retry:`), within `wait` seconds."""
        fields: dict[str, str] = {}
        data: list[str] = []
        async with asyncio.timeout(wait):
            while True:
                raw = await self.response.content.readline()
                if raw == b"":
                    raise ConnectionError("the stream ended")
                line = raw.decode().rstrip("\n")
                if line == "":
                    if data or "event" in fields:
                        return Sse(
                            fields.get("id", ""), fields.get("event", "message"), json.loads("\n".join(data))
                        )
                    fields, data = {}, []
                    continue
                if line.startswith(":"):
                    continue
                name, _, value = line.partition(":")
                value = value.removeprefix(" ")
                if name == "data":
                    data.append(value)
                else:
                    fields[name] = value

    async def until(self, predicate: Any, wait: float = 30) -> list[Sse]:
        """Events up to and including the first that satisfies `predicate`."""
        got: list[Sse] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        while True:
            event = await self.next(max(0.1, deadline - loop.time()))
            got.append(event)
            if predicate(event):
                return got

    def close(self) -> None:
        self.response.close()
