"""``replay serve``: a capture plays the outlet, so an app's handling reproduces without hardware.

Each live connection plays the next recorded connection of its transport. A live
request gets the recorded reply of the matching recorded request (see
:class:`~proxy.replay.Matcher`) with the live packetID in it, after the recorded delay,
and *fires* that recorded request as an anchor: the pushes and the outlet-side close
that hung from it in the recording are scheduled from that moment, on whichever live
connection plays their recorded one (a revB's sync cb21 and progress belong to the
connection after the restart, yet are timed from the cb21 request). After a close the
listeners turn connections away for the recorded down time, as the relay did while the
real outlet rebooted. Delays are divided by ``speed``.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from proxy.core import protocol
from proxy.core.errors import UserError
from proxy.core.events import Transport
from proxy.core.framing import Frame, parse_json
from proxy.net.addresses import Listener
from proxy.net.server import Endpoint, ListenError, OutletServer
from proxy.replay.script import (
    Action,
    Matcher,
    MatchHow,
    RecordedConnection,
    RecordedRequest,
    Script,
    rewrite_packet_id,
)

Unmatched = Literal["puback0", "silence"]


@dataclass(slots=True)
class ServeOptions:
    listener: Listener = field(default_factory=Listener)
    speed: float = 1.0
    unmatched: Unmatched = "puback0"
    strict: bool = False


@dataclass(frozen=True, slots=True)
class RequestReport:
    """What the replay made of one live request."""

    conn: int
    callback: int | None
    args: Any
    packet_id: Any
    how: MatchHow | Literal["unmatched"]
    recorded: int | None
    """Message id of the recorded request it was answered from."""


@dataclass(order=True, slots=True)
class _Item:
    when: float
    seq: int
    kind: Literal["send", "close"] = field(compare=False)
    data: bytes = field(compare=False, default=b"")
    down: float = field(compare=False, default=0.0)
    what: str = field(compare=False, default="")


class _Live:
    """One app connection; a player task sends what is due, in time order."""

    def __init__(self, server: ReplayServer, endpoint: Endpoint) -> None:
        self.server = server
        self.endpoint = endpoint
        self.number = endpoint.number
        self.transport = endpoint.transport
        self.peer = endpoint.peer
        self.recorded: RecordedConnection | None = None
        self.opened = asyncio.get_running_loop().time()
        self.closed = False
        self._heap: list[_Item] = []
        self._wake = asyncio.Event()
        self.player = asyncio.create_task(self._play())

    def schedule(self, item: _Item) -> None:
        heapq.heappush(self._heap, item)
        self._wake.set()

    async def _play(self) -> None:
        loop = asyncio.get_running_loop()
        while not self.closed:
            if not self._heap:
                self._wake.clear()
                await self._wake.wait()
                continue
            wait = self._heap[0].when - loop.time()
            if wait > 0:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), wait)
                continue
            item = heapq.heappop(self._heap)
            if item.kind == "close":
                self.server._outlet_close(self, item)
                return
            try:  # a TCP message ends with a newline, as the outlet's do
                await self.endpoint.write(
                    item.data + b"\n" if self.transport == "tcp" else item.data
                )
            except OSError:
                return

    def stop(self) -> None:
        self.closed = True
        self.player.cancel()


class ReplayServer:
    """Listens like the outlet and plays ``script``; ``async with ReplayServer(...)``.

    ``on_line`` gets one line per connection, request and outlet action; ``on_problem``
    one line per request the recording cannot answer. With ``strict`` the first such
    request sets :attr:`failed`.
    """

    def __init__(
        self,
        script: Script,
        options: ServeOptions | None = None,
        *,
        on_line: Callable[[str], None] | None = None,
        on_problem: Callable[[str], None] | None = None,
    ) -> None:
        self.script = script
        self.options = options or ServeOptions()
        if not self.options.speed > 0:
            raise ValueError("speed must be greater than 0")
        self.reports: list[RequestReport] = []
        self.failed = asyncio.Event()
        self.refused = 0
        self._on_line = on_line
        self._on_problem = on_problem
        self._matcher = Matcher(script.requests)
        self._queues: dict[Transport, list[RecordedConnection]] = {
            t: [c for c in script.connections if c.transport == t] for t in ("tcp", "ws")
        }
        self._live: dict[int, _Live] = {}  # endpoint number -> its player
        self._playing: dict[str, _Live] = {}  # recorded conn -> live connection playing it
        self._fired: dict[int, tuple[float, Any]] = {}  # anchor -> (loop time, live packetID)
        self._down_until = 0.0
        self._refused_since_up = 0
        self._seq = itertools.count()
        listener = self.options.listener
        self._server = OutletServer(self, listener.host, listener.tcp_port, listener.ws_port)

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        try:
            await self._server.start()
        except ListenError as exc:
            raise UserError(str(exc)) from None

    async def stop(self) -> None:
        for live in list(self._live.values()):
            live.stop()
        await self._server.stop()

    async def __aenter__(self) -> ReplayServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def tcp_port(self) -> int | None:
        """The port bound once started (the one asked for before); None: no TCP."""
        return self._server.tcp_port

    @property
    def ws_port(self) -> int | None:
        return self._server.ws_port

    @property
    def ws_url(self) -> str:
        return self._server.ws_url

    def listening(self) -> str:
        return self._server.describe()

    @property
    def finished(self) -> bool:
        """Every recorded connection has been played and nothing is left to send."""
        return not any(self._queues.values()) and all(
            not live._heap for live in self._live.values()
        )

    # ------------------------------------------------------------------ connections

    def _down(self) -> bool:
        return asyncio.get_running_loop().time() < self._down_until

    # the sockets' handler (proxy.net.server.Handler)

    def refusal(self, transport: Transport, peer: str) -> str | None:
        """While a recorded reboot is being replayed, connections are turned away."""
        if not self._down():
            return None
        self._refuse(peer, transport)
        return "outlet down (replaying a reboot)"

    def connected(self, endpoint: Endpoint) -> None:
        self._connected(_Live(self, endpoint))

    def frame(self, endpoint: Endpoint, frame: Frame) -> None:
        live = self._live.get(endpoint.number)
        if live is not None:
            self._on_frame(live, frame)

    async def disconnected(self, endpoint: Endpoint) -> None:
        live = self._live.get(endpoint.number)
        if live is not None:
            self._disconnected(live)

    def _refuse(self, peer: str, transport: Transport) -> None:
        self.refused += 1
        self._refused_since_up += 1
        if self._refused_since_up == 1:
            self._say(f"{transport} connection from {peer} turned away: the outlet is down")

    def _connected(self, live: _Live) -> None:
        self._live[live.number] = live
        queue = self._queues[live.transport]
        if self._refused_since_up > 1:
            self._say(f"turned away {self._refused_since_up} attempts while down, as recorded")
        self._refused_since_up = 0
        if not queue:
            self._say(
                f"conn {live.number} {live.transport} from {live.peer}: no recorded "
                f"{live.transport} connection left; answering requests only"
            )
            return
        rc = queue.pop(0)
        live.recorded = rc
        self._playing[rc.conn] = live
        self._say(
            f"conn {live.number} {live.transport} from {live.peer}: plays recorded {rc.conn} "
            f"({len(rc.requests)} request(s), {len(rc.actions)} outlet action(s))"
        )
        for action in rc.actions:
            if action.anchor is None:
                self._schedule(live, action, live.opened)
            elif action.anchor in self._fired:
                self._schedule(live, action, self._fired[action.anchor][0])
        if not any(self._queues.values()):
            self._say("every recorded connection is now playing")

    def _disconnected(self, live: _Live) -> None:
        if self._live.pop(live.number, None) is None:
            return
        live.stop()
        if live.recorded is not None and self._playing.get(live.recorded.conn) is live:
            del self._playing[live.recorded.conn]
        self._say(f"conn {live.number}: closed")

    # ------------------------------------------------------------------ outlet actions

    def _schedule(self, live: _Live, action: Action, base: float) -> None:
        when = base + action.delay / self.options.speed
        if action.kind == "close":
            live.schedule(_Item(when, action.order, "close", down=action.down, what=action.conn))
            return
        data = action.raw
        if action.echoes and action.anchor is not None:
            old = self.script.by_id[action.anchor].packet_id
            data = rewrite_packet_id(data, old, self._fired[action.anchor][1])
        live.schedule(_Item(when, action.order, "send", data))

    def _fire(self, anchor: int, packet_id: Any) -> None:
        if anchor in self._fired:
            return
        now = asyncio.get_running_loop().time()
        self._fired[anchor] = (now, packet_id)
        for action in self.script.by_anchor.get(anchor, ()):
            live = self._playing.get(action.conn)
            if live is not None and not live.closed:
                self._schedule(live, action, now)

    def _outlet_close(self, live: _Live, item: _Item) -> None:
        down = item.down / self.options.speed
        self._down_until = asyncio.get_running_loop().time() + down
        self._say(
            f"conn {live.number}: outlet closes it, as in recorded {item.what}"
            + (f"; down for {down:.3g} s" if down > 0 else "")
        )
        live.closed = True
        live.endpoint.abort()

    # ------------------------------------------------------------------ requests

    def _on_frame(self, live: _Live, frame: Frame) -> None:
        if live.closed:
            return
        msg = protocol.decode(frame, 0, live.transport)
        loop = asyncio.get_running_loop()
        if msg.callback is None:
            what = frame.raw[:80].decode(errors="replace")
            self._unanswerable(live, msg.packet_id, None, None, f"not a request: {what!r}")
            return
        rec_conn = live.recorded.conn if live.recorded is not None else None
        found = self._matcher.match(msg.callback, msg.args, rec_conn)
        if found is None:
            self._unanswerable(
                live,
                msg.packet_id,
                msg.callback,
                msg.args,
                f"cb{msg.callback} {msg.name}: the recording holds no request of this callback",
            )
            return
        rec = found.request
        self.reports.append(
            RequestReport(live.number, msg.callback, msg.args, msg.packet_id, found.how, rec.msg_id)
        )
        now = loop.time()
        fresher = self._fresher_state(live, rec) if found.how == "reused" else None
        if fresher is not None:
            # The recording answered this callback again only by a push (the app got it
            # before it asked): that push tells the state the story has reached.
            data = rewrite_packet_id(fresher.raw, _packet_id_of(fresher.raw), msg.packet_id)
            delay = rec.replies[0].delay if rec.replies else 0.0
            live.schedule(_Item(now + delay / self.options.speed, -1, "send", data))
            self._say(
                f"conn {live.number}: {msg.name or f'cb{msg.callback}'} answered with the "
                f"recorded cb{msg.callback} push of {fresher.conn} (the latest state)"
            )
            self._fire(rec.msg_id, msg.packet_id)
            return
        for reply in rec.replies:
            data = reply.raw
            if reply.echoes:
                data = rewrite_packet_id(data, rec.packet_id, msg.packet_id)
            live.schedule(_Item(now + reply.delay / self.options.speed, -1, "send", data))
        answer = (
            f"reply in {rec.replies[0].delay * 1000 / self.options.speed:.0f} ms"
            if rec.replies
            else "no reply, as recorded"
        )
        note = {"exact": "", "reused": ", reused", "other-args": ", OTHER ARGUMENTS"}[found.how]
        self._say(
            f"conn {live.number}: {msg.name or f'cb{msg.callback}'} (cb{msg.callback}) "
            f"packetID {msg.packet_id} -> recorded #{rec.msg_id} in {rec.conn}{note}; {answer}"
        )
        if found.how == "other-args" and self._on_problem is not None:
            self._on_problem(
                f"conn {live.number}: cb{msg.callback} with arguments {_json(msg.args)} was "
                f"answered from a recorded request with {_json(rec.args)}"
            )
        self._fire(rec.msg_id, msg.packet_id)

    def _fresher_state(self, live: _Live, rec: RecordedRequest) -> Action | None:
        """A push of ``rec``'s callback recorded after its reply and no later than the
        connection the live one plays, if the recording has one."""
        if live.recorded is None or not rec.replies:
            return None
        after = rec.t + rec.replies[-1].delay
        until = live.recorded.opened
        best: Action | None = None
        for connection in self.script.connections:
            if connection.opened > until:
                continue
            for action in connection.actions:
                if (
                    action.kind == "push"
                    and action.callback == rec.callback
                    and action.t > after
                    and (best is None or action.t > best.t)
                ):
                    best = action
        return best

    def _unanswerable(
        self, live: _Live, packet_id: Any, callback: int | None, args: Any, why: str
    ) -> None:
        self.reports.append(
            RequestReport(live.number, callback, args, packet_id, "unmatched", None)
        )
        opts = self.options
        answer = (
            "stopping (--strict)"
            if opts.strict
            else ("answered PUBACK 0" if opts.unmatched == "puback0" else "left unanswered")
        )
        line = f"conn {live.number}: unmatched request (packetID {packet_id}): {why}; {answer}"
        if self._on_problem is not None:
            self._on_problem(line)
        if opts.strict:
            self.failed.set()
            return
        if opts.unmatched == "puback0":
            reply: dict[str, Any] = {}
            if self.script.sn is not None:
                reply["sn"] = self.script.sn
            if packet_id is not None:
                reply["packetID"] = packet_id
            reply["PUBACK"] = 0
            now = asyncio.get_running_loop().time()
            data = json.dumps(reply, separators=(",", ":")).encode()
            live.schedule(_Item(now, -1, "send", data))

    def _say(self, line: str) -> None:
        if self._on_line is not None:
            self._on_line(line)


def _packet_id_of(raw: bytes) -> Any:
    try:
        value = parse_json(raw)
    except ValueError:
        return None
    return value.get("packetID") if isinstance(value, dict) else None


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))
