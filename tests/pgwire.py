"""A TCP relay between a real server process and the real PostgreSQL that reads what the server sends (the
frontend side of PostgreSQL's wire protocol) and writes down its round trips: what an operator would see in
a packet capture. A round trip is one message the server then waits on: a simple Query, a Sync (the end of
extended-protocol statements) or a Flush (a statement being prepared). Each is kept with the SQL it carried
(a Bind names its prepared statement: its text is the Parse seen earlier on that connection).

The relay only reads; bytes go through unchanged. TLS would hide the messages, so the server is given a URL
with `sslmode=disable` (`Relay.url`).
"""

from __future__ import annotations

import asyncio
import struct
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

_SPECIAL_REQUESTS = {80877103, 80877104}  # SSLRequest, GSSENCRequest: answered by one byte, no type


@dataclass
class Trip:
    """One round trip of one server connection: the statements it carried, in order, and when it was sent."""

    connection: int
    at: float
    kind: str  # "query" (simple), "sync" or "flush"
    sql: list[str] = field(default_factory=list)

    def text(self) -> str:
        return " | ".join(" ".join(s.split()) for s in self.sql)


class _Reader:
    """The frontend messages of one connection, parsed as they stream by."""

    def __init__(self, relay: Relay, number: int) -> None:
        self.relay, self.number = relay, number
        self.buf = b""
        self.started = False
        self.statements: dict[str, str] = {}
        self.pending: list[str] = []

    def feed(self, data: bytes) -> None:
        self.buf += data
        while True:
            if not self.started:
                if len(self.buf) < 8:
                    return
                (length,) = struct.unpack("!i", self.buf[:4])
                if len(self.buf) < length:
                    return
                (code,) = struct.unpack("!i", self.buf[4:8])
                self.buf = self.buf[length:]
                if code not in _SPECIAL_REQUESTS:
                    self.started = True  # the StartupMessage
                continue
            if len(self.buf) < 5:
                return
            kind = self.buf[:1]
            (length,) = struct.unpack("!i", self.buf[1:5])
            if len(self.buf) < 1 + length:
                return
            body, self.buf = self.buf[5 : 1 + length], self.buf[1 + length :]
            self._message(kind, body)

    def _message(self, kind: bytes, body: bytes) -> None:
        if kind == b"P":  # Parse: name, query, parameter types
            name, rest = body.split(b"\0", 1)
            query = rest.split(b"\0", 1)[0].decode()
            self.statements[name.decode()] = query
            self.pending.append(query if not name else f"PREPARE {query}")
        elif kind == b"B":  # Bind: portal, statement name, ...
            _portal, rest = body.split(b"\0", 1)
            name = rest.split(b"\0", 1)[0].decode()
            if name:
                self.pending.append(self.statements.get(name, f"<statement {name}>"))
        elif kind == b"Q":
            self.pending.append(body.rstrip(b"\0").decode())
            self._trip("query")
        elif kind == b"S":
            self._trip("sync")
        elif kind == b"H":
            self._trip("flush")

    def _trip(self, kind: str) -> None:
        trip = Trip(self.number, time.monotonic(), kind, self.pending)
        self.pending = []
        with self.relay.lock:
            self.relay.trips.append(trip)


class Relay:
    """Listens on 127.0.0.1 (a port of its own) and relays to the PostgreSQL of `database_url`, in a thread of
    its own; `trips` grows as the server talks."""

    def __init__(self, database_url: str) -> None:
        parts = urlsplit(database_url)
        query = dict(parse_qsl(parts.query))
        socket_dir = query.pop("host", "") if query.get("host", "").startswith("/") else ""
        self._target = (socket_dir, parts.hostname or "127.0.0.1", parts.port or 5432)
        self._parts, self._query = parts, query
        self.trips: list[Trip] = []
        self.lock = threading.Lock()
        self._count = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self.port = 0
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the relay did not start")

    @property
    def url(self) -> str:
        """The database's URL through this relay (TCP, no TLS)."""
        user = self._parts.username or "postgres"
        password = f":{self._parts.password}" if self._parts.password else ""
        query = urlencode({**self._query, "sslmode": "disable"})
        netloc = f"{user}{password}@127.0.0.1:{self.port}"
        return urlunsplit((self._parts.scheme, netloc, self._parts.path, query, ""))

    def since(self, start: float) -> list[Trip]:
        with self.lock:
            return [t for t in self.trips if t.at >= start]

    def close(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._client, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        socket_dir, host, port = self._target
        if socket_dir:
            up_reader, up_writer = await asyncio.open_unix_connection(f"{socket_dir}/.s.PGSQL.{port}")
        else:
            up_reader, up_writer = await asyncio.open_connection(host, port)
        self._count += 1
        parser = _Reader(self, self._count)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter, read: bool) -> None:
            try:
                while data := await src.read(65536):
                    if read:
                        parser.feed(data)
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer, True), pipe(up_reader, writer, False))
