"""One app-side connection to an outlet (or to a proxy in front of one).

The scripted app and replay send both talk to an outlet over either transport; opening,
reading through the core's framer, sending and closing live here once. What differs
between the transports is only how bytes move, which a small wire object hides.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Callable

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from proxy.core.events import Close, Data, Open, Side, Transport, is_utf8
from proxy.core.framing import Frame, Framer
from proxy.net.peers import peer_text, ws_url

READ_SIZE = 65536

OnFrame = Callable[["OutletLink", Frame], None]
OnChunk = Callable[["OutletLink", Side, bytes, bool], None]
OnEnd = Callable[["OutletLink"], None]

# What opening a link can raise besides ValueError (a bad address): the outlet is not
# there, did not answer in time, or is not a WebSocket server (or refused the upgrade).
CONNECT_ERRORS = (OSError, TimeoutError, InvalidHandshake)

_numbers = itertools.count(1)


class LinkClosed(Exception):
    """Sending failed: the connection is gone."""


class _Wire:
    """How bytes move on one transport; the link does everything else."""

    local = ""
    remote = ""

    async def receive(self) -> tuple[bytes, bool] | None:
        """The next chunk or message and whether it is text (as :attr:`Data.text`);
        None at the end."""
        raise NotImplementedError

    async def send(self, data: bytes) -> None:
        """Raises :class:`LinkClosed` when the connection is gone."""
        raise NotImplementedError

    async def close(self) -> None:
        """Hang up politely."""
        raise NotImplementedError

    def abort(self) -> None:
        """Hang up at once: no goodbye, nothing flushed."""
        raise NotImplementedError


class _TcpWire(_Wire):
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self.local = peer_text(writer.get_extra_info("sockname"))
        self.remote = peer_text(writer.get_extra_info("peername"))

    async def receive(self) -> tuple[bytes, bool] | None:
        try:
            chunk = await self._reader.read(READ_SIZE)
        except OSError:
            return None
        return (chunk, is_utf8(chunk)) if chunk else None

    async def send(self, data: bytes) -> None:
        try:
            self._writer.write(data)
            await self._writer.drain()
        except OSError as exc:
            raise LinkClosed(str(exc)) from exc

    async def close(self) -> None:
        self._writer.close()
        with contextlib.suppress(OSError):
            await self._writer.wait_closed()

    def abort(self) -> None:
        self._writer.transport.abort()


class _WsWire(_Wire):
    def __init__(self, ws: ClientConnection) -> None:
        self._ws = ws
        self.local = peer_text(ws.local_address)
        self.remote = peer_text(ws.remote_address)

    async def receive(self) -> tuple[bytes, bool] | None:
        try:
            message = await self._ws.recv()
        except ConnectionClosed:
            return None
        if isinstance(message, str):
            return message.encode(), True
        return message, False

    async def send(self, data: bytes) -> None:
        try:
            await self._ws.send(data.decode(errors="replace"))
        except ConnectionClosed as exc:
            raise LinkClosed(str(exc)) from exc

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._ws.close(), 2.0)

    def abort(self) -> None:
        self._ws.transport.abort()


class OutletLink:
    """A connection whose reader hands every frame the outlet sends to ``on_frame``.

    ``on_chunk`` (optional) sees every chunk that crosses the wire, either way, as it
    crosses: the side that sent it, the bytes (a TCP chunk as read or written, or one
    WebSocket message) and whether it is text, as :class:`~proxy.core.events.Data`
    records them. ``on_end`` runs once when the connection ends, whoever ended it.
    """

    def __init__(
        self,
        transport: Transport,
        wire: _Wire,
        number: int,
        on_frame: OnFrame,
        on_chunk: OnChunk | None,
        on_end: OnEnd | None,
    ) -> None:
        self.transport = transport
        self.local = wire.local
        self.remote = wire.remote
        self.number = number
        self.closed = False
        self.closed_by_app = False
        self._wire = wire
        self._on_frame = on_frame
        self._on_chunk = on_chunk
        self._on_end = on_end
        self._framer = Framer()
        self._cid = str(number)
        self._framer.feed(Open(0.0, self._cid, transport, self.local, self.remote))
        self._task = asyncio.get_running_loop().create_task(self._read())

    @classmethod
    async def open(
        cls,
        transport: Transport,
        host: str,
        port: int | None,
        *,
        on_frame: OnFrame,
        on_chunk: OnChunk | None = None,
        on_end: OnEnd | None = None,
        timeout: float = 10.0,
        ping_interval: float | None = None,
        url: str | None = None,
        number: int | None = None,
    ) -> OutletLink:
        """Connect over ``transport``; the WebSocket goes to ``url`` if given, else to
        ``/ws`` on ``host:port``. ``number`` names the link (default: the next of a
        process-wide count). Raises ValueError for a bad address (the text says why)
        and one of :data:`CONNECT_ERRORS` when the outlet cannot be reached.

        The reader starts only when the caller next yields to the event loop, so
        whatever it does with the returned link before that precedes every chunk."""
        wire: _Wire
        if transport == "tcp":
            reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
            wire = _TcpWire(reader, writer)
        else:
            try:
                ws = await connect(
                    url or ws_url(host, port),
                    open_timeout=timeout,
                    ping_interval=ping_interval,
                    close_timeout=1,
                    max_size=None,
                )
            except InvalidURI as exc:
                raise ValueError(str(exc)) from None
            wire = _WsWire(ws)
        number = next(_numbers) if number is None else number
        return cls(transport, wire, number, on_frame, on_chunk, on_end)

    async def _read(self) -> None:
        cid = self._cid
        try:
            while (got := await self._wire.receive()) is not None:
                data, text = got
                if self._on_chunk is not None:
                    self._on_chunk(self, "outlet", data, text)
                for frame in self._framer.feed(Data(0.0, cid, "outlet", data)):
                    self._on_frame(self, frame)
            for frame in self._framer.feed(Close(0.0, cid, "outlet")):
                self._on_frame(self, frame)
        finally:
            self._end()

    def _end(self) -> None:
        """Once, however the connection ended (a reader cancelled before it ran too)."""
        if not self.closed:
            self.closed = True
            if self._on_end is not None:
                self._on_end(self)

    async def send(self, data: bytes) -> None:
        """Send ``data`` as is (a TCP write, or one WebSocket text message); raises
        :class:`LinkClosed` once the connection has ended, before anything is sent."""
        if self.closed:  # the kernel may still take a write after the reset: say so now
            raise LinkClosed("the outlet closed the connection")
        if self._on_chunk is not None:
            self._on_chunk(self, "app", data, self.transport == "ws" or is_utf8(data))
        await self._wire.send(data)

    async def close(self) -> None:
        """Hang up politely and wait (briefly) for the reader to see the end."""
        self._hang_up()
        await self._wire.close()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._task), 2.0)
        await self._stop_reader()

    async def abort(self) -> None:
        """Hang up at once, as an app that is killed does: no goodbye, nothing flushed."""
        self._hang_up()
        self._wire.abort()
        await self._stop_reader()

    def _hang_up(self) -> None:
        if not self.closed:
            self.closed_by_app = True

    async def _stop_reader(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._end()
