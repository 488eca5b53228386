"""The mitmproxy adapter: turns a live relay's hooks into wire events.

This is the only place that knows how mitmproxy represents connections and messages.
Everything downstream (recording, analysis, the TUI) sees ``proxy.core.events`` only,
delivered to *sinks*: callables that take one event. A sink may fail; forwarding never
does (DESIGN 1.3), so every sink call is fenced off here.

Also a stock mitmproxy script::

    mitmdump -s proxy/addon.py --mode reverse:tcp://OUTLET:3333@3333 \\
        --set invis_capture=captures/session.invcap

which records to a capture file and adds an "InvisOutlet" contentview to mitmproxy and
mitmweb.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Final

from mitmproxy import contentviews, ctx, http, tcp
from mitmproxy.addonmanager import Loader
from mitmproxy.connection import Client, Connection, ConnectionState
from mitmproxy.proxy import events as mevents
from mitmproxy.proxy import layer as mlayer
from mitmproxy.proxy.commands import StartHook
from mitmproxy.proxy.context import Context
from mitmproxy.proxy.layers import TCPLayer, WebsocketLayer
from mitmproxy.proxy.layers.modes import ReverseProxy
from mitmproxy.proxy.layers.tcp import TcpMessageHook
from mitmproxy.proxy.layers.websocket import WebsocketMessageHook
from mitmproxy.proxy.mode_specs import ReverseMode
from mitmproxy.proxy.server_hooks import ServerConnectionHookData
from mitmproxy.utils.human import format_address

from proxy.core.events import Close, Closer, Data, Event, Open, Side, Transport, is_utf8
from proxy.core.framing import JsonBoundary

logger = logging.getLogger(__name__)

Sink = Callable[[Event], object]
"""Receives every wire event, in order, on the event loop thread. Return value ignored."""

FIRST_CLOSE: Final = "invis_first_close"
"""flow.metadata key: who closed a TCP flow first (``app``, ``outlet`` or ``proxy``)."""

NORMAL_WS_CLOSE_CODES: Final = frozenset({1000, 1001, 1005})

DEFER_QUIET: Final = 0.002
"""Deferred sinks run once the relay has had no event for this long (seconds)..."""
DEFER_MAX: Final = 0.05
"""...or once the oldest undelivered event is this old, whichever comes first."""
DRAIN_SLICE: Final = 0.0002
"""A delivery gives the event loop back to the relay after this long, then goes on
(a reply arriving meanwhile waits at most this, plus one event's work)."""


class InjectError(ValueError):
    """An injection that cannot be done now (unknown or closed connection, mid-object)."""


class _Conn:
    """What the addon knows about one app connection.

    A plain class, not a dataclass: mitmproxy executes scripts outside sys.modules,
    where dataclasses cannot resolve their annotations.
    """

    __slots__ = ("boundary", "client", "closed", "conn", "flow", "injected", "transport")

    def __init__(self, client: Client) -> None:
        self.client = client
        self.conn: str | None = None
        self.transport: Transport | None = None
        self.closed = False
        self.flow: tcp.TCPFlow | http.HTTPFlow | None = None
        # per data source side: is the stream between JSON values (TCP injection safety)
        self.boundary: dict[Side, JsonBoundary] = {
            "app": JsonBoundary(),
            "outlet": JsonBoundary(),
        }
        # bytes objects handed to inject.tcp whose echo through tcp_message is still due
        self.injected: deque[bytes] = deque()


def _without_hook(
    commands: mlayer.CommandGenerator[None], hook: type[StartHook], handle: Callable[[], None]
) -> mlayer.CommandGenerator[None]:
    """``commands`` with every ``hook`` command handled here, synchronously.

    A message hook is blocking: mitmproxy forwards the message only after a task has
    run the hook through every addon and resumed the layer on a later loop iteration.
    Calling the addon in place forwards the message in the same step it arrived.
    """
    reply: Any = None
    while True:
        try:
            command = commands.send(reply)
        except StopIteration:
            return
        if type(command) is hook:
            handle()
            reply = None
        else:
            reply = yield command


class _InvisTCPLayer(TCPLayer):
    """mitmproxy's TCP relay, noting who closed first (tcp_end alone cannot tell).

    The first ``ConnectionClosed`` of a flow comes from the side that sent EOF (or
    reset); if the proxy itself tore the connection down (timeout, shutdown, write
    error) that connection is already fully CLOSED rather than half-open.

    With a ``direct`` addon each message goes to it without a ``tcp_message`` hook.
    """

    def __init__(self, context: Context, addon: InvisAddon) -> None:
        super().__init__(context)
        self.addon = addon

    def relay_messages(self, event: mevents.Event) -> mlayer.CommandGenerator[None]:
        flow = self.flow
        if (
            isinstance(event, mevents.ConnectionClosed)
            and flow is not None
            and FIRST_CLOSE not in flow.metadata
        ):
            side = "app" if event.connection == self.context.client else "outlet"
            peer_closed = bool(event.connection.state & ConnectionState.CAN_WRITE)
            flow.metadata[FIRST_CLOSE] = side if peer_closed else "proxy"
        commands = super().relay_messages(event)
        if self.addon.direct and flow is not None:
            commands = _without_hook(commands, TcpMessageHook, lambda: self.addon.tcp_message(flow))
        yield from commands


class _InvisWebsocketLayer(WebsocketLayer):
    """mitmproxy's WebSocket relay, handing each message to a ``direct`` addon in place.

    mitmproxy's HTTP layer builds a plain WebsocketLayer itself; the addon turns it
    into this class at ``websocket_start`` (see :meth:`InvisAddon.websocket_start`).
    """

    addon: InvisAddon

    def relay_messages(self, event: mevents.Event) -> mlayer.CommandGenerator[None]:
        flow = self.flow
        yield from _without_hook(
            super().relay_messages(event),
            WebsocketMessageHook,
            lambda: self.addon.websocket_message(flow),
        )


def _transport_of(client: Client) -> Transport | None:
    """The wire transport a reverse-mode listener carries, if it is one of ours."""
    mode = client.proxy_mode
    if isinstance(mode, ReverseMode):
        if mode.scheme == "tcp":
            return "tcp"
        if mode.scheme == "http":
            return "ws"
    return None


def _address(conn: Connection) -> str:
    addr = conn.peername or getattr(conn, "address", None)
    return format_address(addr) if addr else ""


class InvisAddon:
    """Emits Open/Data/Close for every app<->outlet connection through mitmproxy.

    - TCP (reverse ``tcp://`` listener): Open when the outlet connection is up, one
      Data per received chunk, Close when both sides are done.
    - WebSocket (reverse ``http://`` listener, path ``invis_ws_path``): Open at the
      upgrade, one Data per message, Close at the end. Other HTTP requests are
      forwarded by mitmproxy and not recorded.
    - An outlet that cannot be reached yields Open + Close(by="proxy", error="outlet
      unreachable: ...") so the failure lands in the capture too.

    Connection ids are "c1", "c2", ... in order of opening.

    ``sinks`` run inside the hook, before the bytes are forwarded (a capture there holds
    every byte that was forwarded, even after a crash). ``deferred_sinks`` get the same
    events in the same order later, in batches: once traffic pauses for DEFER_QUIET, at
    the latest DEFER_MAX after an event, in slices of DRAIN_SLICE. Slow consumers such
    as the analysis then add (almost) nothing to the relay's latency. :meth:`flush`
    delivers everything at once.

    ``direct`` is for a master that runs no other addon wanting messages (the
    :class:`proxy.mitm.relay.Relay`): the relay layers then hand each message straight to
    this addon instead of firing the ``tcp_message`` / ``websocket_message`` hooks,
    which costs mitmproxy a task and a loop iteration per message.
    """

    def __init__(
        self,
        *sinks: Sink,
        deferred_sinks: Iterable[Sink] = (),
        ws_path: str = "/ws",
        direct: bool = False,
    ) -> None:
        self.sinks: list[Sink] = list(sinks)
        self.direct = direct
        self.deferred_sinks: list[Sink] = list(deferred_sinks)
        self._deferred: deque[Event] = deque()
        self._deferred_count = 0  # ever queued: tells the drain timer whether more came
        self._count_at_check = 0
        self._batch_start = 0.0
        self._drain: asyncio.Handle | None = None
        self.ws_path = ws_path
        self.sink_errors = 0
        """How many sink calls raised (each failing sink is logged once)."""
        self.closing = False
        """Set by the owner while it tears connections down: closes are then by 'proxy'."""
        self._failed_sinks: set[int] = set()
        self._clients: dict[str, _Conn] = {}
        self._idle = asyncio.Event()
        self._idle.set()
        self._by_conn: dict[str, _Conn] = {}
        self._next_id = 1
        self._last_t = 0.0
        self._capture: Any = None
        self._capture_sink: Sink | None = None
        self._contentview = InvisContentview()

    # ------------------------------------------------------------------ sinks

    def add_sink(self, sink: Sink) -> None:
        self.sinks.append(sink)

    def remove_sink(self, sink: Sink) -> None:
        self.sinks.remove(sink)

    def _now(self) -> float:
        """Wall-clock time, never earlier than the previous event's (traces need order)."""
        t = time.time()
        if t < self._last_t:
            return self._last_t
        self._last_t = t
        return t

    def _emit(self, event: Event) -> None:
        for sink in self.sinks:
            self._call(sink, event)
        if self.deferred_sinks:
            self._deferred.append(event)
            self._deferred_count += 1
            if self._drain is None:
                loop = asyncio.get_running_loop()
                self._batch_start = loop.time()
                self._count_at_check = self._deferred_count
                self._drain = loop.call_later(DEFER_QUIET, self._drain_when_quiet)

    def _drain_when_quiet(self) -> None:
        """Deliver the batch once no event came for DEFER_QUIET, or it is DEFER_MAX old.

        While messages keep coming, the deferred sinks (analysis, screen) would only sit
        between a request and its reply; their output is not looked at more often than
        that anyway.
        """
        loop = asyncio.get_running_loop()
        waited = loop.time() - self._batch_start
        if self._deferred_count != self._count_at_check and waited < DEFER_MAX:
            self._count_at_check = self._deferred_count
            delay = min(DEFER_QUIET, DEFER_MAX - waited)
            self._drain = loop.call_later(delay, self._drain_when_quiet)
        else:
            self._drain_slice()

    def _drain_slice(self) -> None:
        """Deliver pending events for at most DRAIN_SLICE, then let the loop relay again."""
        deadline = time.perf_counter() + DRAIN_SLICE
        pending = self._deferred
        while pending:
            event = pending.popleft()
            for sink in self.deferred_sinks:
                self._call(sink, event)
            if pending and time.perf_counter() > deadline:
                # call_later(0), not call_soon: the next loop iteration runs the I/O
                # callbacks that are ready (the relaying) before due timers
                self._drain = asyncio.get_running_loop().call_later(0, self._drain_slice)
                return
        self._drain = None

    def flush(self) -> None:
        """Hand every pending event to the deferred sinks now."""
        if self._drain is not None:
            self._drain.cancel()
            self._drain = None
        pending = self._deferred
        while pending:
            event = pending.popleft()
            for sink in self.deferred_sinks:
                self._call(sink, event)

    def _call(self, sink: Sink, event: Event) -> None:
        try:
            sink(event)
        except Exception:
            self.sink_errors += 1
            if id(sink) not in self._failed_sinks:
                self._failed_sinks.add(id(sink))
                logger.error(
                    "invisproxy: sink %r failed (traffic is still forwarded; "
                    "further failures of this sink are only counted)",
                    sink,
                    exc_info=True,
                )

    # ------------------------------------------------------------------ mitmproxy: setup

    def load(self, loader: Loader) -> None:
        loader.add_option(
            "invis_capture",
            str,
            "",
            "Record the InvisOutlet traffic to this invisproxy capture file (.invcap).",
        )
        loader.add_option(
            "invis_ws_path",
            str,
            "/ws",
            "Request path of the InvisOutlet WebSocket; other WebSockets are not recorded.",
        )
        contentviews.add(self._contentview)

    def configure(self, updated: set[str]) -> None:
        if "invis_ws_path" in updated:
            self.ws_path = ctx.options.invis_ws_path
        if "invis_capture" in updated:
            self._close_capture()
            if ctx.options.invis_capture:
                self._open_capture(ctx.options.invis_capture)

    def _open_capture(self, path: str) -> None:
        from proxy.store.capture import CaptureWriter

        meta = {"source": "mitmproxy", "modes": list(ctx.options.mode)}
        self._capture = CaptureWriter(Path(path), meta, flush_each=True)
        self._capture_sink = self._capture.write
        self.sinks.append(self._capture_sink)
        logger.info(f"invisproxy: recording to {path}")

    def _close_capture(self) -> None:
        if self._capture_sink is not None:
            self.sinks.remove(self._capture_sink)
            self._capture_sink = None
        if self._capture is not None:
            capture, self._capture = self._capture, None
            capture.close()

    def done(self) -> None:
        self._close_remaining()
        self.flush()
        self._close_capture()
        if self.sink_errors:
            logger.warning(f"invisproxy: {self.sink_errors} sink call(s) failed in total")

    def next_layer(self, nextlayer: mlayer.NextLayer) -> None:
        """Raw TCP reverse mode: always our close-aware TCP relay, never TLS sniffing.

        The outlet speaks plain TCP, so whatever the app sends is relayed as bytes (a
        first byte of 0x16 must not turn the connection into a TLS interception).
        """
        context = nextlayer.context
        if _transport_of(context.client) != "tcp" or not context.layers:
            return
        if not isinstance(context.layers[0], ReverseProxy):
            return
        current = nextlayer.layer
        if current is None and len(context.layers) == 1:
            nextlayer.layer = _InvisTCPLayer(context, self)
        elif (
            type(current) is TCPLayer
            and current.flow is not None
            and context.layers == [context.layers[0], current]
        ):
            # stock mitmproxy: NextLayer (earlier in the chain) already chose TCPLayer
            context.layers.remove(current)
            nextlayer.layer = _InvisTCPLayer(context, self)

    # ------------------------------------------------------------------ mitmproxy: connections

    def client_connected(self, client: Client) -> None:
        self._clients[client.id] = _Conn(client)
        self._idle.clear()

    def _state(self, client: Client) -> _Conn:
        state = self._clients.get(client.id)
        if state is None:  # loaded while a connection was already live
            state = self._clients[client.id] = _Conn(client)
            self._idle.clear()
        return state

    def _open(self, state: _Conn, transport: Transport, outlet: str) -> None:
        if state.conn is not None:
            return
        state.conn = f"c{self._next_id}"
        self._next_id += 1
        state.transport = transport
        self._by_conn[state.conn] = state
        self._emit(Open(self._now(), state.conn, transport, _address(state.client), outlet))

    def _close(self, state: _Conn, by: Closer | None, error: str | None = None) -> None:
        if state.conn is None or state.closed:
            return
        state.closed = True
        if self.closing:
            by = "proxy"
        self._emit(Close(self._now(), state.conn, by, error))

    def server_connected(self, data: ServerConnectionHookData) -> None:
        if _transport_of(data.client) == "tcp":
            self._open(self._state(data.client), "tcp", _address(data.server))

    def server_connect_error(self, data: ServerConnectionHookData) -> None:
        transport = _transport_of(data.client)
        if transport is None:
            return
        state = self._state(data.client)
        self._open(state, transport, _address(data.server))
        self._close(state, "proxy", f"outlet unreachable: {data.server.error}")

    def client_disconnected(self, client: Client) -> None:
        state = self._clients.pop(client.id, None)
        if state is None:
            return
        # tcp_end / websocket_end normally came first; this covers connections that
        # ended before a flow existed (app gone before its first byte, shutdown, ...)
        self._close(state, None)
        if state.conn is not None:
            self._by_conn.pop(state.conn, None)
        if not self._clients:
            self._idle.set()

    def _close_remaining(self) -> None:
        """Close every connection still open at shutdown.

        mitmproxy runs end hooks as tasks, and a master shutting down may not run them:
        a connection whose close had begun is closed by who began it, any other by
        ``proxy``.
        """
        for state in list(self._clients.values()):
            flow = state.flow
            if isinstance(flow, http.HTTPFlow):
                if flow.websocket is not None and flow.websocket.timestamp_end is not None:
                    self.websocket_end(flow)
            elif flow is not None:
                self._close(state, flow.metadata.get(FIRST_CLOSE, "proxy"))
            self._close(state, "proxy")

    async def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until every app connection seen has disconnected; False on timeout."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            return False
        return True

    # ------------------------------------------------------------------ mitmproxy: TCP

    def tcp_start(self, flow: tcp.TCPFlow) -> None:
        state = self._state(flow.client_conn)
        state.flow = flow
        self._open(state, "tcp", _address(flow.server_conn))

    def tcp_message(self, flow: tcp.TCPFlow) -> None:
        state = self._state(flow.client_conn)
        if state.conn is None:
            state.flow = flow
            self._open(state, "tcp", _address(flow.server_conn))
        assert state.conn is not None
        message = flow.messages[-1]
        content = message.content
        side: Side = "app" if message.from_client else "outlet"
        injected = False
        for i, pending in enumerate(state.injected):
            if pending is content:
                del state.injected[i]
                injected = True
                break
        state.boundary[side].feed(content)
        self._emit(Data(self._now(), state.conn, side, content, is_utf8(content), injected))
        if self.direct and len(flow.messages) > 1:
            # The embedded relay records every message itself; mitmproxy would keep
            # them all in the flow for the connection's life (days, for a device), so
            # only the one being forwarded stays. As a mitmdump/mitmweb script the flow
            # keeps its history: mitmweb shows it.
            del flow.messages[:-1]

    def tcp_end(self, flow: tcp.TCPFlow) -> None:
        by: Closer | None = flow.metadata.get(FIRST_CLOSE)
        self._close(self._state(flow.client_conn), by)

    def tcp_error(self, flow: tcp.TCPFlow) -> None:
        by: Closer | None = flow.metadata.get(FIRST_CLOSE)
        error = flow.error.msg if flow.error else None
        self._close(self._state(flow.client_conn), by, error)

    # ------------------------------------------------------------------ mitmproxy: WebSocket

    def _is_ours(self, flow: http.HTTPFlow) -> bool:
        return flow.request.path.partition("?")[0] == self.ws_path

    def websocket_start(self, flow: http.HTTPFlow) -> None:
        if not self._is_ours(flow):
            return
        state = self._state(flow.client_conn)
        state.flow = flow
        self._open(state, "ws", _address(flow.server_conn))
        if self.direct:
            self._take_over_websocket(flow)

    def _take_over_websocket(self, flow: http.HTTPFlow) -> None:
        """Make the flow's WebsocketLayer an :class:`_InvisWebsocketLayer`.

        Reached through the connection's HTTP layer (HttpLayer.streams[...].child_layer,
        mitmproxy 12). Called while the layer waits for this hook, before it relays a
        message. If the layer is not found the hooks keep working, only slower.
        """
        addons: Any = ctx.master.addons
        handler = addons.get("proxyserver").connections.get(flow.client_conn.id)
        if handler is None:
            return
        for layer in handler.layer.context.layers:
            for stream in getattr(layer, "streams", {}).values():
                child = getattr(stream, "child_layer", None)
                if type(child) is WebsocketLayer and child.flow is flow:
                    child.__class__ = _InvisWebsocketLayer
                    assert isinstance(child, _InvisWebsocketLayer)
                    child.addon = self
                    return
        logger.debug("invisproxy: WebSocket layer not found, relaying through hooks")

    def websocket_message(self, flow: http.HTTPFlow) -> None:
        if flow.websocket is None or not self._is_ours(flow):
            return
        state = self._state(flow.client_conn)
        if state.conn is None:
            state.flow = flow
            self._open(state, "ws", _address(flow.server_conn))
        assert state.conn is not None
        messages = flow.websocket.messages
        message = messages[-1]
        side: Side = "app" if message.from_client else "outlet"
        self._emit(
            Data(self._now(), state.conn, side, message.content, message.is_text, message.injected)
        )
        if self.direct and len(messages) > 1:
            del messages[:-1]  # as for TCP: the recording holds them, not the flow

    def websocket_end(self, flow: http.HTTPFlow) -> None:
        if flow.websocket is None or not self._is_ours(flow):
            return
        ws = flow.websocket
        by: Closer = "app" if ws.closed_by_client else "outlet"
        error = None
        if ws.close_code not in NORMAL_WS_CLOSE_CODES:
            error = f"WebSocket closed with code {ws.close_code}"
            if ws.close_reason:
                error += f": {ws.close_reason}"
        elif flow.error:
            error = flow.error.msg
        self._close(self._state(flow.client_conn), by, error)

    # ------------------------------------------------------------------ injection

    def flow_history(self, conn: str) -> int:
        """How many messages mitmproxy holds in a live connection's flow (tests)."""
        state = self._by_conn.get(conn)
        flow = state.flow if state is not None else None
        if flow is None:
            return 0
        if isinstance(flow, tcp.TCPFlow):
            return len(flow.messages)
        return len(flow.websocket.messages) if flow.websocket is not None else 0

    def inject(self, conn: str, to: Side, data: bytes, *, text: bool = True) -> None:
        """Send ``data`` to the app or the outlet on a live connection.

        It travels as if the other endpoint had sent it and is recorded as
        ``Data(injected=True)``. TCP injection is refused while that direction's stream
        is inside a JSON value (inserting there would corrupt both). ``text`` chooses
        the WebSocket message type. Call on the event loop thread.
        """
        state = self._by_conn.get(conn)
        if state is None or state.closed:
            raise InjectError(f"connection {conn} is not live")
        if to not in ("app", "outlet"):
            raise InjectError(f"cannot inject toward {to!r}: choose 'app' or 'outlet'")
        flow = state.flow
        if flow is None or not flow.live:
            raise InjectError(f"connection {conn} has no live flow yet (nothing relayed so far)")
        addons: Any = ctx.master.addons
        proxyserver = addons.get("proxyserver")
        to_client = to == "app"
        payload = bytes(data)
        if isinstance(flow, tcp.TCPFlow):
            source: Side = "outlet" if to_client else "app"
            if not state.boundary[source].at_boundary:
                raise InjectError(
                    f"connection {conn}: the {source}->{to} stream is inside a JSON value; "
                    "inject once it is complete"
                )
            state.injected.append(payload)
            proxyserver.inject_tcp(flow, to_client, payload)
        else:
            proxyserver.inject_websocket(flow, to_client, payload, text)


# ---------------------------------------------------------------------- contentview


def describe_chunk(data: bytes, side: Side, transport: Transport) -> str:
    """The InvisOutlet messages in one TCP chunk or WebSocket message, for people.

    Each value gets its decoded one-line summary, its fields with their meaning and
    the pretty JSON. A chunk is seen on its own here: a value split across TCP chunks
    shows up as incomplete (the timeline, which sees the whole stream, joins them).
    """
    from proxy.core import protocol
    from proxy.core.framing import Framer

    framer = Framer()
    framer.feed(Open(0.0, "c", transport, "", ""))
    frames = framer.feed(Data(0.0, "c", side, data, is_utf8(data)))
    rest = framer.feed(Close(0.0, "c"))  # what is left: a value the next chunk completes
    blocks: list[str] = []
    for i, frame in enumerate(frames):
        msg = protocol.decode(frame, i, transport)
        head = f"cb{msg.callback}" if msg.callback is not None else msg.kind
        lines = [f"# {head} {protocol.summary(msg)}"]
        lines += [f"#   {f.name} = {f.value}  ({f.meaning})" for f in protocol.fields(msg)]
        lines += [f"#   {a.severity}: {a.code}: {a.text}" for a in msg.annotations]
        if frame.error is None:
            lines.append(json.dumps(frame.value, indent=2, ensure_ascii=False))
        else:
            lines.append(frame.raw.decode("utf-8", "replace"))
        blocks.append("\n".join(lines))
    for frame in rest:
        text = frame.raw.decode("utf-8", "replace")
        blocks.append(f"# incomplete here (continues in the next chunk)\n{text}")
    if not blocks:
        raise ValueError("no JSON value in this message")
    return "\n\n".join(blocks)


class InvisContentview(contentviews.Contentview):
    """Shows decoded InvisOutlet messages in mitmproxy/mitmweb."""

    @property
    def name(self) -> str:
        return "InvisOutlet"

    @property
    def syntax_highlight(self) -> contentviews.SyntaxHighlight:
        return "yaml"

    def prettify(self, data: bytes, metadata: contentviews.Metadata) -> str:
        if metadata.websocket_message is not None:
            from_client = metadata.websocket_message.from_client
            transport: Transport = "ws"
        else:
            from_client = metadata.tcp_message is None or metadata.tcp_message.from_client
            transport = "tcp"
        return describe_chunk(data, "app" if from_client else "outlet", transport)

    def render_priority(self, data: bytes, metadata: contentviews.Metadata) -> float:
        if metadata.tcp_message is None and metadata.websocket_message is None:
            return -1
        if data.lstrip()[:1] != b"{":
            return -1
        return 2 if b"payload" in data or b"packetID" in data else 0.5


addons = [InvisAddon()]
