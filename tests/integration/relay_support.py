"""Shared pieces for the live relay tests: an event log to wait on, outlets, payloads."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from proxy.core.events import Close, Data, Event, Open

WAIT = 20.0
"""Upper bound for any single wait in these tests (a loaded 2-core box is slow)."""

RelayFactory = Callable[..., Any]
"""The ``make_relay`` fixture: keyword options in, a started ``Relay`` out."""


class EventLog:
    """A sink that keeps every event and lets a test wait for a condition on them."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self._changed = asyncio.Event()

    def __call__(self, event: Event) -> None:
        self.events.append(event)
        self._changed.set()

    async def wait_for(self, predicate: Callable[[list[Event]], bool], what: str) -> None:
        async def loop() -> None:
            while not predicate(self.events):
                self._changed.clear()
                await self._changed.wait()

        try:
            await asyncio.wait_for(loop(), WAIT)
        except TimeoutError:
            raise AssertionError(f"timed out waiting for {what}; events: {self.events}") from None

    async def wait_closed(self, conn: str) -> Close:
        await self.wait_for(
            lambda evs: any(isinstance(e, Close) and e.conn == conn for e in evs),
            f"close of {conn}",
        )
        return next(e for e in self.events if isinstance(e, Close) and e.conn == conn)

    def of(self, conn: str) -> list[Event]:
        return [e for e in self.events if e.conn == conn]

    def opens(self) -> list[Open]:
        return [e for e in self.events if isinstance(e, Open)]

    def stream(self, conn: str, side: str) -> bytes:
        return b"".join(e.data for e in self.of(conn) if isinstance(e, Data) and e.side == side)


def random_json_messages(rng: random.Random, count: int) -> list[bytes]:
    """InvisOutlet-shaped JSON objects with awkward content (escapes, unicode, nesting)."""
    words = ["on", "off", 'quo"te', "back\\slash", "{brace}", "[br]", "ünï©ødé", "😀", "\n\t"]

    def value(depth: int) -> Any:
        kind = rng.randrange(6 if depth < 3 else 4)
        if kind == 0:
            return rng.randint(-(10**9), 10**9)
        if kind == 1:
            return rng.random() * 1000
        if kind == 2:
            return rng.choice(words) * rng.randint(0, 3)
        if kind == 3:
            return rng.choice([True, False, None])
        if kind == 4:
            return [value(depth + 1) for _ in range(rng.randint(0, 4))]
        return {rng.choice(words) + str(i): value(depth + 1) for i in range(rng.randint(0, 4))}

    out = []
    for _ in range(count):
        msg = {
            "packetID": rng.randint(100000, 999999),
            "payload": {"callbackName": rng.randint(1, 30), "callbackArgs": value(0)},
        }
        sep = rng.choice(["", "\n", " ", "\r\n", "\n\n"])
        out.append(json.dumps(msg, ensure_ascii=rng.random() < 0.5).encode() + sep.encode())
    return out


async def write_in_random_chunks(
    writer: asyncio.StreamWriter, data: bytes, rng: random.Random, max_chunk: int = 700
) -> None:
    """Write ``data`` cut at random places, draining between pieces."""
    pos = 0
    while pos < len(data):
        n = rng.randint(1, max_chunk)
        writer.write(data[pos : pos + n])
        pos += n
        await writer.drain()


class TcpOutlet:
    """A raw TCP outlet: runs ``handler`` per connection; can close and re-listen."""

    def __init__(
        self,
        handler: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]],
    ) -> None:
        self.handler = handler
        self.server: asyncio.Server | None = None
        self.port = 0
        self.writers: list[asyncio.StreamWriter] = []
        self.accepted = 0

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        self.writers.append(writer)
        try:
            await self.handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop listening and drop every connection (an outlet reboot)."""
        if self.server is not None:
            self.server.close()
        for w in self.writers:
            w.transport.abort()
        self.writers.clear()
        if self.server is not None:
            await self.server.wait_closed()
            self.server = None


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()


def split_points(data: Sequence[bytes]) -> list[int]:
    """Offsets where each message ends in the concatenation of ``data``."""
    ends, pos = [], 0
    for chunk in data:
        pos += len(chunk)
        ends.append(pos)
    return ends


async def relay_to_outlet(
    make_relay: RelayFactory,
    handler: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]],
    *sinks: Callable[[Event], None],
    **relay_options: Any,
) -> tuple[TcpOutlet, EventLog, Any]:
    """A started TCP outlet running ``handler`` and a relay to it whose last sink is a log.

    Most relay tests open this way; ``sinks`` come before the log, as the tests order them.
    """
    outlet = TcpOutlet(handler)
    await outlet.start()
    log = EventLog()
    relay = await make_relay(outlet_tcp_port=outlet.port, sinks=[*sinks, log], **relay_options)
    return outlet, log, relay
