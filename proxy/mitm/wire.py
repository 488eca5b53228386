"""The relay's side of an intervention: put bytes on a live connection, close it.

:class:`proxy.mitm.intervene.Interventions` decides and times; this carries it out
through mitmproxy's injection (the bytes travel as if the other endpoint had sent them)
and its connection handler. The addon recognises the echo of each send and lets it
pass unrecorded: the intervention recorded it when it decided.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any

from mitmproxy import ctx, http, tcp

from proxy.core.events import Event, Side
from proxy.mitm.takeover import close_connection

if TYPE_CHECKING:
    from proxy.mitm.addon import InvisAddon


def send_through(
    flow: tcp.TCPFlow | http.HTTPFlow, to_app: bool, payload: bytes, text: bool
) -> None:
    """Send ``payload`` on a live flow through mitmproxy's proxyserver (a TCP chunk or a
    WebSocket message), as the relay's own sends and the user's injections both do."""
    addons: Any = ctx.master.addons
    proxyserver = addons.get("proxyserver")
    if isinstance(flow, tcp.TCPFlow):
        proxyserver.inject_tcp(flow, to_app, payload)
    else:
        proxyserver.inject_websocket(flow, to_app, payload, text)


class Released:
    """Per connection and direction: what was sent whose echo is still due, in order.

    TCP keeps the very bytes object (mitmproxy passes it through); a WebSocket message is
    reassembled from frames, so it is matched by value, head first.
    """

    __slots__ = ("pending",)

    def __init__(self) -> None:
        self.pending: dict[Side, deque[bytes]] = {"app": deque(), "outlet": deque()}

    def add(self, side: Side, data: bytes) -> None:
        self.pending[side].append(data)

    def take(self, side: Side, content: bytes, same_object: bool) -> bool:
        """Whether ``content`` arriving from ``side`` is the echo of a send (consumed)."""
        queue = self.pending[side]
        if not queue:
            return False
        if same_object:
            for i, data in enumerate(queue):
                if data is content:
                    del queue[i]
                    return True
            return False
        if queue[0] == content:
            queue.popleft()
            return True
        return False


class MitmWire:
    """:class:`proxy.mitm.intervene.Wire` over mitmproxy, for one addon."""

    def __init__(self, addon: InvisAddon) -> None:
        self.addon = addon

    def send(self, conn: str, to: Side, data: bytes, text: bool) -> bool:
        state = self.addon.connection(conn)
        flow = state.flow if state is not None else None
        if state is None or state.closed or flow is None or not flow.live:
            return False
        source: Side = "outlet" if to == "app" else "app"
        payload = bytes(data)
        state.released.add(source, payload)
        send_through(flow, to == "app", payload, text)
        return True

    def close(self, conn: str) -> None:
        state = self.addon.connection(conn)
        if state is None or state.closed or state.flow is None:
            return
        state.closed_by_proxy = True
        close_connection(state.flow)

    def emit(self, event: Event) -> None:
        self.addon.emit(event)

    def now(self) -> float:
        return self.addon.now()
