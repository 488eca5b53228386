"""The event addon: turns mitmproxy's connection and message hooks into wire events.

This is the only place that knows how mitmproxy represents connections and messages.
Everything downstream (recording, analysis, the TUI) sees ``proxy.core.events`` only,
delivered through the sink bus (:mod:`proxy.mitm.sinks`). Beside it: the capture
option (:mod:`proxy.mitm.recorder`), the contentview (:mod:`proxy.mitm.contentview`)
and the version-bound relay layers (:mod:`proxy.mitm.takeover`).

Also a stock mitmproxy script::

    mitmdump -s proxy/addon.py --mode reverse:tcp://OUTLET:3333@3333 \\
        --set invis_capture=captures/session.invcap

which records to a capture file and adds an "InvisOutlet" contentview to mitmproxy and
mitmweb.

About 500 lines on purpose: every hook reads and writes the one connection table
(ids, transports, which side closed), so the hooks stay together; what does not need
that table lives in the modules named above.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Iterable
from typing import Any, ClassVar, Final

from mitmproxy import contentviews, ctx, http, tcp
from mitmproxy.addonmanager import Loader
from mitmproxy.connection import Client, Connection
from mitmproxy.proxy import layer as mlayer
from mitmproxy.proxy.mode_specs import ReverseMode
from mitmproxy.proxy.server_hooks import ServerConnectionHookData
from mitmproxy.utils.human import format_address

from proxy.core.events import Close, Closer, Data, Event, Open, Side, Transport, is_utf8
from proxy.core.framing import JsonBoundary
from proxy.core.rules import RuleSet
from proxy.mitm.contentview import InvisContentview, describe_chunk
from proxy.mitm.intervene import Interventions
from proxy.mitm.options import RULES as RULES_OPTION
from proxy.mitm.options import WS_PATH, add_options
from proxy.mitm.recorder import CaptureRecorder
from proxy.mitm.rules_file import RulesOption
from proxy.mitm.sinks import DEFER_MAX, DEFER_QUIET, DRAIN_SLICE, Sink, SinkBus
from proxy.mitm.takeover import FIRST_CLOSE, LayerTakeover
from proxy.mitm.wire import MitmWire, Released, send_through

__all__ = [
    "DEFER_MAX",
    "DEFER_QUIET",
    "DRAIN_SLICE",
    "FIRST_CLOSE",
    "InjectError",
    "InvisAddon",
    "InvisContentview",
    "LayerTakeover",
    "Sink",
    "addons",
    "describe_chunk",
]

logger = logging.getLogger(__name__)

NORMAL_WS_CLOSE_CODES: Final = frozenset({1000, 1001, 1005})


class InjectError(ValueError):
    """An injection that cannot be done now (unknown or closed connection, mid-object)."""


class _Conn:
    """What the addon knows about one app connection.

    A plain class, not a dataclass: mitmproxy executes scripts outside sys.modules,
    where dataclasses cannot resolve their annotations.
    """

    __slots__ = (
        "boundary",
        "client",
        "closed",
        "closed_by_proxy",
        "conn",
        "flow",
        "injected",
        "released",
        "transport",
    )

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
        # what interventions sent (recorded already): its echo passes unrecorded
        self.released = Released()
        self.closed_by_proxy = False  # a close rule ended it


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


class InvisAddon(SinkBus):
    """Emits Open/Data/Close for every app<->outlet connection through mitmproxy.

    - TCP (reverse ``tcp://`` listener): Open when the outlet connection is up, one
      Data per received chunk, Close when both sides are done.
    - WebSocket (reverse ``http://`` listener, path ``invis_ws_path``): Open at the
      upgrade, one Data per message, Close at the end. Other HTTP requests are
      forwarded by mitmproxy and not recorded.
    - An outlet that cannot be reached yields Open + Close(by="proxy", error="outlet
      unreachable: ...") so the failure lands in the capture too.

    Connection ids are "c1", "c2", ... in order of opening.

    The events go to ``sinks`` inside the hook, before the bytes are forwarded, and to
    ``deferred_sinks`` later, in batches (see :class:`proxy.mitm.sinks.SinkBus`).

    ``direct`` is for a master that runs no other addon wanting messages (the
    :class:`proxy.mitm.relay.Relay`): the relay layers then hand each message straight to
    this addon instead of firing the ``tcp_message`` / ``websocket_message`` hooks,
    which costs mitmproxy a task and a loop iteration per message. ``takeover`` puts
    those layers in place (only on the mitmproxy version they were written for).
    """

    sink_log: ClassVar[logging.Logger] = logger  # not "log": mitmproxy hooks are found by name

    def __init__(
        self,
        *sinks: Sink,
        deferred_sinks: Iterable[Sink] = (),
        ws_path: str = "/ws",
        direct: bool = False,
        takeover: LayerTakeover | None = None,
        rules: RuleSet | None = None,
    ) -> None:
        super().__init__(sinks, deferred_sinks)
        self.interventions = Interventions(MitmWire(self), rules)
        """Rules, the intercept filter and held messages (:mod:`proxy.mitm.intervene`)."""
        self._rules_option = RulesOption(self.interventions.set_rules)
        self.direct = direct
        self.takeover = takeover if takeover is not None else LayerTakeover()
        self.ws_path = ws_path
        self.closing = False
        """Set by the owner while it tears connections down: closes are then by 'proxy'."""
        self._clients: dict[str, _Conn] = {}
        self._idle = asyncio.Event()
        self._idle.set()
        self._by_conn: dict[str, _Conn] = {}
        self._next_id = 1
        self._last_t = 0.0
        self._recorder = CaptureRecorder(self)
        self._contentview = InvisContentview()

    def connection(self, conn: str) -> _Conn | None:
        """A live connection's state, by id."""
        return self._by_conn.get(conn)

    def emit(self, event: Event) -> None:
        """Record an event made outside the hooks (an intervention's)."""
        self._emit(event)

    def now(self) -> float:
        return self._now()

    def _now(self) -> float:
        """Wall-clock time, never earlier than the previous event's (traces need order)."""
        t = time.time()
        if t < self._last_t:
            return self._last_t
        self._last_t = t
        return t

    # ------------------------------------------------------------------ mitmproxy: setup

    def load(self, loader: Loader) -> None:
        add_options(loader)
        contentviews.add(self._contentview)
        self.takeover.applies()  # says at startup if it will not

    def configure(self, updated: set[str]) -> None:
        if WS_PATH in updated:
            self.ws_path = ctx.options.invis_ws_path
        self._recorder.configure(updated)
        if RULES_OPTION in updated:
            self._rules_option.configure(updated, ctx.options.invis_rules)

    def running(self) -> None:
        self._rules_option.running()

    def done(self) -> None:
        self._rules_option.done()
        self._close_remaining()
        self.flush()
        self._recorder.close()
        if self.sink_errors:
            logger.warning(f"invisproxy: {self.sink_errors} sink call(s) failed in total")

    def next_layer(self, nextlayer: mlayer.NextLayer) -> None:
        """The raw TCP listener's connections get the takeover's layer, if any."""
        if _transport_of(nextlayer.context.client) == "tcp":
            self.takeover.tcp_layer(nextlayer, self)

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
        self.interventions.opened(state.conn, transport)

    def _close(self, state: _Conn, by: Closer | None, error: str | None = None) -> None:
        if state.conn is None or state.closed:
            return
        state.closed = True
        if self.interventions.engaged:
            self.interventions.closed(state.conn)  # what still waited is recorded first
        if self.closing or state.closed_by_proxy:
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
        boundary = state.boundary[side]
        if self.interventions.engaged and self._intervened(state, side, message, boundary):
            pass
        else:
            injected = False
            for i, pending in enumerate(state.injected):
                if pending is content:
                    del state.injected[i]
                    injected = True
                    break
            boundary.feed(content)
            if injected:
                to: Side = "app" if side == "outlet" else "outlet"
                utf8 = is_utf8(content)
                self._emit(self.interventions.injected(state.conn, to, content, utf8))
            else:
                self._emit(Data(self._now(), state.conn, side, content, is_utf8(content)))
        if self.direct and len(flow.messages) > 1:
            # The embedded relay records every message itself; mitmproxy would keep
            # them all in the flow for the connection's life (days, for a device), so
            # only the one being forwarded stays. As a mitmdump/mitmweb script the flow
            # keeps its history: mitmweb shows it.
            del flow.messages[:-1]

    def _intervened(
        self, state: _Conn, side: Side, message: tcp.TCPMessage, boundary: JsonBoundary
    ) -> bool:
        """A TCP chunk on a gated direction: what the gate decides is forwarded in its
        place. True if handled here (a send's echo or a gated chunk)."""
        content = message.content
        assert state.conn is not None
        if state.released.take(side, content, same_object=True):
            boundary.feed(content)  # an intervention's send, recorded when it decided
            return True
        if any(pending is content for pending in state.injected):
            return False  # a user's injection on an ungated direction
        if not self.interventions.gated(state.conn, side, boundary.at_boundary):
            return False
        boundary.feed(content)
        out = self.interventions.on_data(state.conn, side, content, is_utf8(content))
        message.content = out if out is not None else b""
        return True

    def end_of_stream(self, flow: tcp.TCPFlow, side: Side) -> bytes:
        """The takeover's TCP layer asks before passing a close on (see takeover)."""
        if not self.interventions.engaged:
            return b""
        state = self._clients.get(flow.client_conn.id)
        if state is None or state.conn is None:
            return b""
        return self.interventions.flush(state.conn, side)

    def websocket_closing(
        self, flow: http.HTTPFlow, to_app: bool, to_outlet: bool
    ) -> list[tuple[bool, bytes, bool]]:
        """The takeover's WebSocket layer asks before the close frames go out; what
        cannot be sent any more is recorded as not forwarded when the flow ends."""
        if not self.interventions.engaged:
            return []
        state = self._clients.get(flow.client_conn.id)
        if state is None or state.conn is None:
            return []
        owed: list[tuple[bool, bytes, bool]] = []
        sources: tuple[tuple[Side, bool], ...] = (("outlet", to_app), ("app", to_outlet))
        for side in (side for side, ok in sources if ok):
            for data, text in self.interventions.flush_units(state.conn, side):
                owed.append((side == "outlet", data, text))
        return owed

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
            self.takeover.websocket(flow, self)

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
        content = message.content
        iv = self.interventions
        if message.injected and state.released.take(side, content, same_object=False):
            pass  # an intervention's send, recorded when it decided
        elif iv.engaged and not message.injected and iv.gated(state.conn, side, True):
            out = iv.on_data(state.conn, side, content, message.is_text)
            if out is not None:
                message.content = out
            else:
                dropped: Any = message  # WebSocketMessage.drop is untyped
                dropped.drop()
        elif message.injected:
            to: Side = "app" if side == "outlet" else "outlet"
            self._emit(iv.injected(state.conn, to, content, message.is_text))
        else:
            self._emit(Data(self._now(), state.conn, side, content, message.is_text))
        if self.direct and len(messages) > 1:
            del messages[:-1]  # as for TCP: the recording holds them, not the flow

    def websocket_end(self, flow: http.HTTPFlow) -> None:
        if flow.websocket is None or not self._is_ours(flow):
            return
        ws = flow.websocket
        by: Closer = "app" if ws.closed_by_client else "outlet"
        state = self._state(flow.client_conn)
        if state.closed_by_proxy:
            self._close(state, "proxy")
            return
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
        payload = bytes(data)
        if self.interventions.engaged and self.interventions.inject(conn, to, payload, text):
            return  # the direction is gated: it goes out behind what waits there
        to_client = to == "app"
        if isinstance(flow, tcp.TCPFlow):
            source: Side = "outlet" if to_client else "app"
            if not state.boundary[source].at_boundary:
                raise InjectError(
                    f"connection {conn}: the {source}->{to} stream is inside a JSON value; "
                    "inject once it is complete"
                )
            state.injected.append(payload)
        send_through(flow, to_client, payload, text)


addons = [InvisAddon()]
