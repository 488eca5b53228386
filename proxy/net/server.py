"""A server that plays the outlet: raw TCP on one port, the WebSocket on ``/ws``.

The simulator and replay serve differ only in what they answer; accepting, framing
what the app sends, refusing while "down", and closing every listener and connection
on stop live here once. A handler gets each connection's frames in order; it answers
through the connection's :class:`Endpoint`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from typing import Any, Protocol

from websockets.asyncio.server import Server as WsServer
from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from proxy.core.errors import listen_failure
from proxy.core.events import Close, Data, Open, Transport
from proxy.core.framing import Frame, Framer
from proxy.net.peers import WS_PATH, peer_text, ws_url

READ_SIZE = 65536
CLOSE_WAIT = 2.0  # seconds stop() waits for listeners and handlers before giving up


class ListenError(Exception):
    """A listener could not bind; the text says which and why, for the user."""


class EndpointClosed(ConnectionError):
    """Writing failed: the app's WebSocket is gone (TCP raises its own OSError)."""


class Endpoint:
    """The outlet's side of one app connection, whichever the transport."""

    def __init__(self, number: int, transport: Transport, peer: str, local: str) -> None:
        self.number = number
        self.transport = transport
        self.peer = peer
        self.local = local
        self.closed = False

    async def write(self, data: bytes) -> None:
        """Send ``data`` as is: TCP bytes, or one WebSocket message (text when it is
        UTF-8, binary otherwise). Raises OSError once the connection is gone."""
        raise NotImplementedError

    async def receive(self) -> bytes | None:
        """The next chunk (TCP) or message (WebSocket) from the app; None at its end."""
        raise NotImplementedError

    def abort(self) -> None:
        """Vanish as a rebooting device does: no goodbye, nothing flushed."""
        raise NotImplementedError


class _TcpEndpoint(Endpoint):
    def __init__(
        self,
        number: int,
        peer: str,
        local: str,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        super().__init__(number, "tcp", peer, local)
        self.reader = reader
        self.writer = writer

    async def receive(self) -> bytes | None:
        try:
            return await self.reader.read(READ_SIZE) or None
        except OSError:
            return None

    async def write(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    def abort(self) -> None:
        self.closed = True
        self.writer.transport.abort()


class _WsEndpoint(Endpoint):
    def __init__(self, number: int, peer: str, local: str, ws: ServerConnection) -> None:
        super().__init__(number, "ws", peer, local)
        self.ws = ws

    async def receive(self) -> bytes | None:
        try:
            message = await self.ws.recv()
        except ConnectionClosed:
            return None
        return message.encode() if isinstance(message, str) else message

    async def write(self, data: bytes) -> None:
        try:
            text = data.decode()
        except UnicodeDecodeError:
            message: str | bytes = data
        else:
            message = text
        try:
            await self.ws.send(message)
        except ConnectionClosed as exc:
            raise EndpointClosed(str(exc)) from exc

    def abort(self) -> None:
        self.closed = True
        self.ws.transport.abort()


class Handler(Protocol):
    """What plays the outlet behind an :class:`OutletServer`."""

    def refusal(self, transport: Transport, peer: str) -> str | None:
        """Why a new connection is turned away now (the outlet is down), or None."""
        ...

    def connected(self, endpoint: Endpoint) -> None: ...

    def frame(self, endpoint: Endpoint, frame: Frame) -> None:
        """One value (or invalid run of bytes) the app sent, in order."""
        ...

    async def disconnected(self, endpoint: Endpoint) -> None:
        """The connection ended (either side); the endpoint is still writable if the
        app only half-closed, so queued replies may go out here."""
        ...


class OutletServer:
    """TCP and WebSocket listeners on ``host`` for one :class:`Handler`.

    A port of None turns that transport off; 0 picks a free one (see ``tcp_port`` /
    ``ws_port`` after :meth:`start`). Frames reach the handler with ``t`` 0.0: the
    server keeps no clock.
    """

    def __init__(
        self,
        handler: Handler,
        host: str,
        tcp_port: int | None,
        ws_port: int | None,
        *,
        max_value_bytes: int = 1 << 20,
    ) -> None:
        self.handler, self.host = handler, host
        self.tcp_port, self.ws_port = tcp_port, ws_port  # the bound ports once started
        self.max_value_bytes = max_value_bytes
        self._tcp: asyncio.Server | None = None
        self._ws: WsServer | None = None
        self._numbers = itertools.count(1)
        self._endpoints: dict[int, Endpoint] = {}
        self._handlers: set[asyncio.Task[Any]] = set()

    # -- lifecycle ----------------------------------------------------------------

    async def start(self) -> None:
        """Bind both listeners, or neither: raises :class:`ListenError` (ValueError
        when both transports are off)."""
        if self.tcp_port is None and self.ws_port is None:
            raise ValueError("both transports are off: nothing to listen on")
        what = ""
        try:
            if self.tcp_port is not None:
                what = f"TCP port {self.tcp_port}"
                self._tcp = await asyncio.start_server(self._serve_tcp, self.host, self.tcp_port)
                self.tcp_port = self._tcp.sockets[0].getsockname()[1]
            if self.ws_port is not None:
                what = f"WebSocket port {self.ws_port}"
                self._ws = await serve(
                    self._serve_ws,
                    self.host,
                    self.ws_port,
                    process_request=self._check_request,
                    ping_interval=None,
                    max_size=None,
                )
                self.ws_port = self._ws.sockets[0].getsockname()[1]
        except OSError as exc:
            await self.stop()
            raise ListenError(
                f"cannot listen on {self.host} {what}: {listen_failure(exc)}"
            ) from exc

    async def stop(self) -> None:
        """Close the listeners and drop every connection (as a device losing power)."""
        tcp, ws = self._tcp, self._ws
        self._tcp = self._ws = None
        if tcp is not None:
            tcp.close()
        if ws is not None:
            ws.close(close_connections=False)
        self.drop_all()
        # Aborted transports end the handlers' reads; cancelling a start_server handler
        # instead makes asyncio log the CancelledError as an unhandled exception.
        if self._handlers:
            await asyncio.wait(list(self._handlers), timeout=CLOSE_WAIT)
        for server in (tcp, ws):
            if server is not None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(server.wait_closed(), CLOSE_WAIT)

    @property
    def listening(self) -> bool:
        return self._tcp is not None or self._ws is not None

    @property
    def ws_url(self) -> str:
        return ws_url(self.host, self.ws_port)

    def describe(self) -> str:
        """What it listens on, for the user."""
        parts = []
        if self.tcp_port is not None:
            parts.append(f"tcp {peer_text((self.host, self.tcp_port))}")
        if self.ws_port is not None:
            parts.append(f"ws {self.ws_url}")
        return ", ".join(parts)

    @property
    def endpoints(self) -> list[Endpoint]:
        """The connections open now, oldest first."""
        return list(self._endpoints.values())

    def drop_all(self) -> None:
        for endpoint in list(self._endpoints.values()):
            endpoint.abort()

    # -- connections ----------------------------------------------------------------

    def _track(self) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
            task.add_done_callback(self._handlers.discard)

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = peer_text(writer.get_extra_info("peername"))
        if self.handler.refusal("tcp", peer) is not None:
            writer.transport.abort()
            return
        self._track()
        local = peer_text(writer.get_extra_info("sockname"))
        await self._run(_TcpEndpoint(next(self._numbers), peer, local, reader, writer))

    def _check_request(self, conn: ServerConnection, request: Request) -> Response | None:
        if request.path.split("?", 1)[0] != WS_PATH:
            return Response(404, "Not Found", Headers(), b"Not Found\n")
        why = self.handler.refusal("ws", peer_text(conn.remote_address))
        if why is not None:
            return Response(503, "Service Unavailable", Headers(), why.encode() + b"\n")
        return None

    async def _serve_ws(self, ws: ServerConnection) -> None:
        self._track()
        peer, local = peer_text(ws.remote_address), peer_text(ws.local_address)
        await self._run(_WsEndpoint(next(self._numbers), peer, local, ws))

    async def _run(self, endpoint: Endpoint) -> None:
        """Frame what the app sends and hand it to the handler, until either side ends."""
        handler, cid = self.handler, str(endpoint.number)
        framer = Framer(self.max_value_bytes)
        framer.feed(Open(0.0, cid, endpoint.transport, endpoint.peer, endpoint.local))
        self._endpoints[endpoint.number] = endpoint
        handler.connected(endpoint)
        try:
            while not endpoint.closed and (data := await endpoint.receive()) is not None:
                for frame in framer.feed(Data(0.0, cid, "app", data)):
                    handler.frame(endpoint, frame)
            if not endpoint.closed:  # the app's last value may be a number its end completes
                for frame in framer.feed(Close(0.0, cid, "app")):
                    handler.frame(endpoint, frame)
        finally:
            self._endpoints.pop(endpoint.number, None)
            await handler.disconnected(endpoint)
            endpoint.abort()
