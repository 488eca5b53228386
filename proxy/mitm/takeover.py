"""The layer takeover: invisproxy's own relay layers inside mitmproxy, for mitmproxy 12.

Everything here leans on mitmproxy internals (layer classes, their command generators,
``HttpLayer.streams[...].child_layer``), which a major release may change. So it is
kept in this one module and runs only on the major version it was written for; on any
other the addon logs that once and relays through mitmproxy's ordinary hooks, which
work, only slower (and cannot tell who closed a TCP connection first).

What the takeover buys: each message reaches the addon in the step it arrived instead
of through a blocking hook (a task and a loop iteration per message), the first close
of a TCP flow is attributed, and raw TCP is never sniffed for TLS.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any, Final, Protocol

from mitmproxy import ctx, http, tcp
from mitmproxy.connection import ConnectionState
from mitmproxy.proxy import events as mevents
from mitmproxy.proxy import layer as mlayer
from mitmproxy.proxy.commands import Command, SendData, StartHook
from mitmproxy.proxy.context import Context
from mitmproxy.proxy.layers import TCPLayer, WebsocketLayer
from mitmproxy.proxy.layers.modes import ReverseProxy
from mitmproxy.proxy.layers.tcp import TcpMessageHook
from mitmproxy.proxy.layers.websocket import Fragmentizer, WebsocketMessageHook
from mitmproxy.version import VERSION

from proxy.core.events import Side

logger = logging.getLogger(__name__)

WRITTEN_FOR: Final = 12
"""The mitmproxy major version whose internals this module was written against."""

FIRST_CLOSE: Final = "invis_first_close"
"""flow.metadata key: who closed a TCP flow first (``app``, ``outlet`` or ``proxy``)."""


class MessageHandler(Protocol):
    """What the layers hand messages to (the event addon)."""

    direct: bool
    """True: call the handler in place of the message hooks (no other addon wants them)."""

    def tcp_message(self, flow: tcp.TCPFlow) -> None: ...

    def websocket_message(self, flow: http.HTTPFlow) -> None: ...

    def end_of_stream(self, flow: tcp.TCPFlow, side: Side) -> bytes:
        """``side`` closed its sending half: bytes still owed to the other side."""
        ...

    def websocket_closing(
        self, flow: http.HTTPFlow, to_app: bool, to_outlet: bool
    ) -> list[tuple[bool, bytes, bool]]:
        """A WebSocket closes: messages still owed toward the sides that can still be
        written to, as (to the app, data, text)."""
        ...


class LayerTakeover:
    """Puts the invisproxy layers in place, if the running mitmproxy is the one expected.

    ``mitmproxy_version`` is the running one by default; passing another shows what
    happens on it (the fallback to ordinary hooks).
    """

    def __init__(self, mitmproxy_version: str = VERSION) -> None:
        self.mitmproxy_version = mitmproxy_version
        self.supported = mitmproxy_version.partition(".")[0] == str(WRITTEN_FOR)
        self._told = False

    def applies(self) -> bool:
        """Whether to take over; says once why not."""
        if not self.supported and not self._told:
            self._told = True
            logger.warning(
                f"invisproxy: written for mitmproxy {WRITTEN_FOR}.x, running "
                f"{self.mitmproxy_version}: relaying through mitmproxy's ordinary hooks "
                "(slower; who closed a TCP connection first is not recorded)"
            )
        return self.supported

    def tcp_layer(self, nextlayer: mlayer.NextLayer, handler: MessageHandler) -> None:
        """Raw TCP reverse mode: always our close-aware TCP relay, never TLS sniffing.

        The outlet speaks plain TCP, so whatever the app sends is relayed as bytes (a
        first byte of 0x16 must not turn the connection into a TLS interception).
        Call only for a connection of the raw TCP listener.
        """
        context = nextlayer.context
        if not context.layers or not isinstance(context.layers[0], ReverseProxy):
            return
        if not self.applies():
            return
        current = nextlayer.layer
        if current is None and len(context.layers) == 1:
            nextlayer.layer = _InvisTCPLayer(context, handler)
        elif (
            type(current) is TCPLayer
            and current.flow is not None
            and context.layers == [context.layers[0], current]
        ):
            # stock mitmproxy: NextLayer (earlier in the chain) already chose TCPLayer
            context.layers.remove(current)
            nextlayer.layer = _InvisTCPLayer(context, handler)

    def websocket(self, flow: http.HTTPFlow, handler: MessageHandler) -> None:
        """Make the flow's WebsocketLayer an :class:`_InvisWebsocketLayer`.

        Reached through the connection's HTTP layer (HttpLayer.streams[...].child_layer,
        mitmproxy 12). Call from ``websocket_start``, while the layer waits for that
        hook, before it relays a message. If the layer is not found the hooks keep
        working, only slower.
        """
        if not self.applies():
            return
        addons: Any = ctx.master.addons
        connection = addons.get("proxyserver").connections.get(flow.client_conn.id)
        if connection is None:
            return
        for layer in connection.layer.context.layers:
            for stream in getattr(layer, "streams", {}).values():
                child = getattr(stream, "child_layer", None)
                if type(child) is WebsocketLayer and child.flow is flow:
                    child.__class__ = _InvisWebsocketLayer
                    assert isinstance(child, _InvisWebsocketLayer)
                    child.addon = handler
                    return
        logger.debug("invisproxy: WebSocket layer not found, relaying through hooks")


def _without_hook(
    commands: mlayer.CommandGenerator[None],
    hook: type[StartHook],
    handle: Callable[[], None],
    before: Callable[[], Iterable[Command]] | None = None,
) -> mlayer.CommandGenerator[None]:
    """``commands`` with every ``hook`` command handled here, synchronously.

    A message hook is blocking: mitmproxy forwards the message only after a task has
    run the hook through every addon and resumed the layer on a later loop iteration.
    Calling the addon in place forwards the message in the same step it arrived.
    ``before`` may put commands of its own ahead of each one passed on.
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
            continue
        if before is not None:
            yield from before()
        reply = yield command


class _InvisTCPLayer(TCPLayer):
    """mitmproxy's TCP relay, noting who closed first (tcp_end alone cannot tell).

    The first ``ConnectionClosed`` of a flow comes from the side that sent EOF (or
    reset); if the proxy itself tore the connection down (timeout, shutdown, write
    error) that connection is already fully CLOSED rather than half-open.

    With a ``direct`` addon each message goes to it without a ``tcp_message`` hook.
    """

    def __init__(self, context: Context, addon: MessageHandler) -> None:
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
        if isinstance(event, mevents.ConnectionClosed) and flow is not None:
            # A gated direction may still hold bytes (a frame without its end, messages
            # that wait): they go out before the close is passed on.
            from_app = event.connection == self.context.client
            peer = self.context.server if from_app else self.context.client
            if peer.state & ConnectionState.CAN_WRITE:  # asked only when it can be sent
                tail = self.addon.end_of_stream(flow, "app" if from_app else "outlet")
                if tail:
                    yield SendData(peer, tail)
        commands = super().relay_messages(event)
        if self.addon.direct and flow is not None:
            commands = _without_hook(commands, TcpMessageHook, lambda: self.addon.tcp_message(flow))
        yield from commands


class _InvisWebsocketLayer(WebsocketLayer):
    """mitmproxy's WebSocket relay, handing each message to a ``direct`` addon in place.

    mitmproxy's HTTP layer builds a plain WebsocketLayer itself; the takeover turns it
    into this class at ``websocket_start`` (see :meth:`LayerTakeover.websocket`).
    """

    addon: MessageHandler

    def relay_messages(self, event: mevents.Event) -> mlayer.CommandGenerator[None]:
        flow = self.flow
        ws = flow.websocket
        closing = ws is not None and ws.timestamp_end is not None

        def owed() -> Iterable[Command]:
            # The close began (mitmproxy sets timestamp_end, then sends the close
            # frames): messages a gated direction still owes go out first.
            nonlocal closing
            if closing or ws is None or ws.timestamp_end is None:
                return
            closing = True
            app_ok = bool(self.context.client.state & ConnectionState.CAN_WRITE)
            outlet_ok = bool(self.context.server.state & ConnectionState.CAN_WRITE)
            for to_app, data, text in self.addon.websocket_closing(flow, app_ok, outlet_ok):
                conn = self.client_ws if to_app else self.server_ws
                for message in Fragmentizer([], text)(data):
                    yield conn.send2(message)

        yield from _without_hook(
            super().relay_messages(event),
            WebsocketMessageHook,
            lambda: self.addon.websocket_message(flow),
            owed,
        )


def close_connection(flow: tcp.TCPFlow | http.HTTPFlow) -> None:
    """Close both sides of a live flow's connection now (a ``close`` rule).

    Through the connection handler mitmproxy's own close command uses (mitmproxy 12);
    the layers then see both connections closed and end the flow as usual.
    """
    addons: Any = ctx.master.addons
    handler = addons.get("proxyserver").connections.get(flow.client_conn.id)
    if handler is None:
        return
    for connection in (flow.server_conn, flow.client_conn):
        if connection in handler.transports and connection.state is not ConnectionState.CLOSED:
            handler.close_connection(connection)
