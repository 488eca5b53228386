"""One app-side connection to an outlet (or to a proxy in front of one).

The scripted app and replay send both talk to an outlet over either transport; opening,
reading through the core's framer, sending and closing live here once.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Callable

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from proxy.core.events import Close, Data, Open, Transport
from proxy.core.framing import Frame, Framer
from proxy.net.peers import peer_text, ws_url

READ_SIZE = 65536

OnFrame = Callable[["OutletLink", Frame], None]
OnChunk = Callable[["OutletLink", bytes, bool], None]
OnEnd = Callable[["OutletLink"], None]

# What opening a link can raise besides ValueError (a bad address): the outlet is not
# there, did not answer in time, or is not a WebSocket server.
CONNECT_ERRORS = (OSError, TimeoutError, InvalidHandshake)

_numbers = itertools.count(1)


class LinkClosed(Exception):
    """Sending failed: the connection is gone."""


class OutletLink:
    """A connection whose reader hands every frame the outlet sends to ``on_frame``.

    ``on_chunk`` (optional) sees the raw bytes first, as read (a TCP chunk or one
    WebSocket message, with whether it was text); ``on_end`` runs once when the
    connection ends, whoever ended it.
    """

    def __init__(
        self,
        transport: Transport,
        local: str,
        remote: str,
        on_frame: OnFrame,
        on_chunk: OnChunk | None,
        on_end: OnEnd | None,
    ) -> None:
        self.transport = transport
        self.local = local
        self.remote = remote
        self.number = next(_numbers)
        self.closed = False
        self.closed_by_app = False
        self._on_frame = on_frame
        self._on_chunk = on_chunk
        self._on_end = on_end
        self._framer = Framer()
        self._cid = str(self.number)
        self._framer.feed(Open(0.0, self._cid, transport, local, remote))
        self._task: asyncio.Task[None] | None = None

    @classmethod
    async def open(
        cls,
        transport: Transport,
        host: str,
        port: int,
        *,
        on_frame: OnFrame,
        on_chunk: OnChunk | None = None,
        on_end: OnEnd | None = None,
        timeout: float = 10.0,
        ping_interval: float | None = None,
        url: str | None = None,
    ) -> OutletLink:
        """Connect over ``transport``; the WebSocket goes to ``url`` if given, else to
        ``/ws`` on ``host:port``. Raises ValueError for a bad address and one of
        :data:`CONNECT_ERRORS` when the outlet cannot be reached."""
        if transport == "tcp":
            reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
            local = peer_text(writer.get_extra_info("sockname"))
            remote = peer_text(writer.get_extra_info("peername"))
            tcp = _TcpLink(local, remote, on_frame, on_chunk, on_end, reader, writer)
            tcp._start()
            return tcp
        try:
            ws = await connect(
                url or ws_url(host, port),
                open_timeout=timeout,
                ping_interval=ping_interval,
                close_timeout=1,
                max_size=None,
            )
        except InvalidURI as exc:
            raise ValueError(f"bad WebSocket address: {exc}") from None
        local, remote = peer_text(ws.local_address), peer_text(ws.remote_address)
        link = _WsLink(local, remote, on_frame, on_chunk, on_end, ws)
        link._start()
        return link

    def _start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._read())

    async def _receive(self) -> tuple[bytes, bool] | None:
        """The next chunk or message and whether it was text; None at the end."""
        raise NotImplementedError

    async def _read(self) -> None:
        cid = self._cid
        try:
            while (got := await self._receive()) is not None:
                data, text = got
                if self._on_chunk is not None:
                    self._on_chunk(self, data, text)
                for frame in self._framer.feed(Data(0.0, cid, "outlet", data)):
                    self._on_frame(self, frame)
            for frame in self._framer.feed(Close(0.0, cid, "outlet")):
                self._on_frame(self, frame)
        finally:
            self.closed = True
            if self._on_end is not None:
                self._on_end(self)

    async def send(self, data: bytes) -> None:
        """Send ``data`` as is (a TCP write, or one WebSocket text message); raises
        :class:`LinkClosed` once the connection has ended."""
        raise NotImplementedError

    async def close(self) -> None:
        """Hang up politely and wait (briefly) for the reader to see the end."""
        raise NotImplementedError

    async def _wait_reader(self) -> None:
        if self._task is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._task), 2.0)
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


class _TcpLink(OutletLink):
    def __init__(
        self,
        local: str,
        remote: str,
        on_frame: OnFrame,
        on_chunk: OnChunk | None,
        on_end: OnEnd | None,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        super().__init__("tcp", local, remote, on_frame, on_chunk, on_end)
        self._reader = reader
        self._writer = writer

    async def _receive(self) -> tuple[bytes, bool] | None:
        try:
            chunk = await self._reader.read(READ_SIZE)
        except OSError:
            return None
        return (chunk, False) if chunk else None

    async def send(self, data: bytes) -> None:
        if self.closed:  # the kernel may still take a write after the reset: say so now
            raise LinkClosed("the outlet closed the connection")
        try:
            self._writer.write(data)
            await self._writer.drain()
        except OSError as exc:
            raise LinkClosed(str(exc)) from exc

    async def close(self) -> None:
        if not self.closed:
            self.closed_by_app = True
        self._writer.close()
        with contextlib.suppress(OSError):
            await self._writer.wait_closed()
        await self._wait_reader()


class _WsLink(OutletLink):
    def __init__(
        self,
        local: str,
        remote: str,
        on_frame: OnFrame,
        on_chunk: OnChunk | None,
        on_end: OnEnd | None,
        ws: ClientConnection,
    ) -> None:
        super().__init__("ws", local, remote, on_frame, on_chunk, on_end)
        self._ws = ws

    async def _receive(self) -> tuple[bytes, bool] | None:
        try:
            message = await self._ws.recv()
        except ConnectionClosed:
            return None
        if isinstance(message, str):
            return message.encode(), True
        return message, False

    async def send(self, data: bytes) -> None:
        if self.closed:
            raise LinkClosed("the outlet closed the connection")
        try:
            await self._ws.send(data.decode(errors="replace"))
        except ConnectionClosed as exc:
            raise LinkClosed(str(exc)) from exc

    async def close(self) -> None:
        if not self.closed:
            self.closed_by_app = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._ws.close(), 2.0)
        await self._wait_reader()
