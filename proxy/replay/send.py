"""``replay send``: the capture plays the app against a real (or simulated) outlet.

The app's recorded requests go out again in recorded order, one live connection per
recorded one, with fresh packetIDs and the recorded gaps (divided by ``speed``). Where
the recording saw a reply, the sender waits for one; the new replies are then diffed
against the recorded ones, ignoring what differs on every run. Callbacks that restart,
reset, update or recalibrate (:data:`~proxy.replay.DESTRUCTIVE`) are skipped unless
allowed. What crossed the wire is recorded as a new capture, like any other session.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from proxy.core.errors import UserError
from proxy.core.events import Close, Data, Event, Open, Side, Transport
from proxy.core.framing import Frame
from proxy.core.protocol import name_of, possible_callbacks
from proxy.net.addresses import Outlet
from proxy.net.client import CONNECT_ERRORS, LinkClosed, OutletLink
from proxy.net.peers import peer_text, ws_url
from proxy.replay.diff import MISSING, diff_reply
from proxy.replay.script import (
    DESTRUCTIVE,
    RecordedRequest,
    Script,
    rewrite_packet_id,
)
from proxy.store.capture import CaptureWriter

TransportChoice = Literal["tcp", "ws", "auto"]


@dataclass(slots=True)
class SendOptions:
    outlet: Outlet
    transport: TransportChoice = "auto"
    """``auto``: each connection as recorded."""
    speed: float = 1.0
    keep_packet_ids: bool = False
    allow_destructive: bool = False
    timeout: float = 5.0
    """How long to wait for each reply the recording saw."""
    connect_timeout: float = 5.0
    reconnect_timeout: float = 30.0
    """After the first connection: how long to keep retrying an outlet that is rebooting."""
    ignore_sn: bool = False
    record: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    seed: int | None = None


@dataclass(slots=True)
class Sent:
    """One request sent again and what came back."""

    request: RecordedRequest
    conn: int
    packet_id: Any
    reply: Any = MISSING
    latency: float | None = None


@dataclass(slots=True)
class SendResult:
    sent: list[Sent] = field(default_factory=list)
    skipped: list[RecordedRequest] = field(default_factory=list)
    differences: list[str] = field(default_factory=list)
    capture: str | None = None


class _Link:
    """One connection to the outlet: the reader files every message by packetID, and
    every chunk either way, the opening and the end go into the recording."""

    def __init__(self, number: int, transport: Transport, record: Callable[[Event], None]) -> None:
        self.number = number
        self.transport = transport
        self.cid = f"c{number}"
        self.record = record
        self.by_packet_id: dict[Any, Any] = {}
        self._waiting: dict[Any, asyncio.Future[Any]] = {}
        self._wire: OutletLink | None = None

    @classmethod
    async def open(
        cls, number: int, transport: Transport, opts: SendOptions, record: Callable[[Event], None]
    ) -> _Link:
        """Connect (raises ValueError or one of CONNECT_ERRORS) and record the opening."""
        link = cls(number, transport, record)
        link._wire = wire = await OutletLink.open(
            transport,
            opts.outlet.host,
            opts.outlet.tcp_port if transport == "tcp" else opts.outlet.ws_port,
            timeout=opts.connect_timeout,
            number=number,
            on_frame=link._frame,
            on_chunk=link._chunk,
            on_end=link._ended,
        )
        # before the reader's first chunk: it starts when this task next waits
        record(Open(time.time(), link.cid, transport, wire.local, wire.remote))
        return link

    @property
    def closed(self) -> bool:
        return self._wire is None or self._wire.closed

    def expect(self, packet_id: Any) -> asyncio.Future[Any]:
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting[packet_id] = fut
        return fut

    def _chunk(self, wire: OutletLink, side: Side, data: bytes, text: bool) -> None:
        self.record(Data(time.time(), self.cid, side, data, text))

    def _frame(self, wire: OutletLink, frame: Frame) -> None:
        value = frame.value
        if frame.error is not None or not isinstance(value, dict) or "packetID" not in value:
            return
        pid = value["packetID"]
        if isinstance(pid, list | dict):
            return
        self.by_packet_id.setdefault(pid, value)
        fut = self._waiting.pop(pid, None)
        if fut is not None and not fut.done():
            fut.set_result(value)

    def _ended(self, wire: OutletLink) -> None:
        self.record(Close(time.time(), self.cid, "app" if wire.closed_by_app else "outlet"))
        for fut in self._waiting.values():
            if not fut.done():
                fut.set_result(MISSING)
        self._waiting.clear()

    async def send(self, data: bytes) -> None:
        """Send one request (a TCP one ends with a newline); raises LinkClosed."""
        if self.transport == "tcp" and not data.endswith(b"\n"):
            data += b"\n"
        assert self._wire is not None
        await self._wire.send(data)

    async def close(self) -> None:
        if self._wire is not None:
            await self._wire.close()


class _Sender:
    def __init__(
        self, script: Script, options: SendOptions, on_line: Callable[[str], None] | None
    ) -> None:
        if not options.speed > 0:
            raise ValueError("speed must be greater than 0")
        self.script = script
        self.options = options
        self.on_line = on_line
        self.rng = random.Random(options.seed)
        self.result = SendResult(capture=options.record)
        self.writer: CaptureWriter | None = None
        self.links = 0
        self.link: _Link | None = None
        self.all_links: list[_Link] = []
        self.transport_of = {c.conn: c.transport for c in script.connections}
        self.used_ids: set[Any] = set()

    def record(self, event: Event) -> None:
        if self.writer is not None and not self.writer.closed:
            self.writer.write(event)

    def say(self, line: str) -> None:
        if self.on_line is not None:
            self.on_line(line)

    def _transport(self, rec_conn: str) -> Transport:
        if self.options.transport != "auto":
            return self.options.transport
        return self.transport_of.get(rec_conn, "tcp")

    def _where(self, transport: Transport) -> str:
        outlet = self.options.outlet
        if transport == "tcp":
            return f"{peer_text((outlet.host, outlet.tcp_port))} (tcp)"
        return ws_url(outlet.host, outlet.ws_port)

    async def _open(self, transport: Transport) -> _Link:
        """Connect; the first connection fails fast, later ones wait out a reboot."""
        opts = self.options
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (opts.reconnect_timeout if self.links else 0.0)
        delay = 0.05
        while True:
            try:
                link = await self._connect(transport)
            except CONNECT_ERRORS as exc:
                if loop.time() + delay > deadline:
                    raise UserError(
                        f"cannot reach the outlet at {self._where(transport)}: {_why(exc)}"
                    ) from None
                await asyncio.sleep(delay)  # backoff between attempts, not synchronisation
                delay = min(1.0, delay * 2)
                continue
            return link

    async def _connect(self, transport: Transport) -> _Link:
        number = self.links + 1
        try:
            link = await _Link.open(number, transport, self.options, self.record)
        except ValueError as exc:
            raise UserError(f"bad outlet address {self.options.outlet.host!r}: {exc}") from None
        self.links = number
        self.all_links.append(link)
        return link

    def _packet_id(self, req: RecordedRequest) -> Any:
        if self.options.keep_packet_ids:
            return req.packet_id
        while True:
            pid = self.rng.randint(100000, 999999)
            if pid not in self.used_ids and pid != req.packet_id:
                self.used_ids.add(pid)
                return pid

    async def run(self) -> SendResult:
        opts, script = self.options, self.script
        if not script.requests:
            raise UserError("the capture holds no requests from an app: nothing to send")
        if opts.record is not None:
            meta = {"source": "invisproxy replay send", **opts.meta}
            try:
                self.writer = CaptureWriter(opts.record, meta)
            except OSError as exc:
                raise UserError(f"cannot record to {opts.record}: {exc.strerror or exc}") from None
        try:
            await self._send_all()
        finally:
            if self.link is not None:
                await self.link.close()
            if self.writer is not None:
                self.writer.close()
        self._diff()
        return self.result

    async def _send_all(self) -> None:
        opts, script = self.options, self.script
        loop = asyncio.get_running_loop()
        total = len(script.requests)
        rec_conn: str | None = None
        prev: tuple[float, float] | None = None  # (recorded t, live time) of the last sent
        for i, req in enumerate(script.requests, 1):
            head = f"[{i}/{total}] {req.label()} ({req.name})"
            if not opts.allow_destructive:
                why = _destructive(req)
                if why is not None:
                    self.result.skipped.append(req)
                    self.say(f"{head}: skipped, {why} (--allow-destructive sends it)")
                    continue
            if prev is not None:
                wait = prev[1] + (req.t - prev[0]) / opts.speed - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)  # the recorded gap: pacing, not synchronisation
            if self.link is None or self.link.closed or req.conn != rec_conn:
                if self.link is not None:
                    await self.link.close()
                self.link = await self._open(self._transport(req.conn))
                rec_conn = req.conn
            pid = self._packet_id(req)
            data = (
                req.raw if opts.keep_packet_ids else rewrite_packet_id(req.raw, req.packet_id, pid)
            )
            sent = Sent(req, self.link.number, pid)
            self.result.sent.append(sent)
            prev = (req.t, loop.time())
            reply = await self._exchange(sent, data, bool(req.replies))
            if not req.replies:
                self.say(f"{head}: sent (no reply was recorded)")
            elif reply is MISSING:
                self.say(f"{head}: no reply within {opts.timeout:g} s")
            else:
                assert sent.latency is not None
                self.say(f"{head}: reply in {sent.latency * 1000:.0f} ms")

    async def _exchange(self, sent: Sent, data: bytes, wait: bool) -> Any:
        loop = asyncio.get_running_loop()
        for attempt in range(2):
            link = self.link
            assert link is not None
            fut = link.expect(sent.packet_id) if wait else None
            start = loop.time()
            try:
                await link.send(data)
            except LinkClosed:
                if attempt == 0:  # the outlet dropped us just now: reconnect once
                    await link.close()
                    self.link = await self._open(link.transport)
                    sent.conn = self.link.number
                    continue
                return MISSING
            if fut is None:
                return MISSING
            try:
                reply = await asyncio.wait_for(fut, self.options.timeout)
            except TimeoutError:
                return MISSING
            if reply is not MISSING:
                sent.reply = reply
                sent.latency = loop.time() - start
            return reply
        return MISSING

    def _diff(self) -> None:
        counts = Counter(s.request.callback for s in self.result.sent)
        nth: Counter[int] = Counter()
        for s in self.result.sent:
            req = s.request
            nth[req.callback] += 1
            label = f"cb{req.callback} reply"
            if counts[req.callback] > 1:
                label += f" #{nth[req.callback]}"
            recorded = req.replies[0].value if req.replies else MISSING
            if not req.replies:  # an answer the recording never saw is a difference too
                s.reply = self.all_links[s.conn - 1].by_packet_id.get(s.packet_id, MISSING)
            self.result.differences += diff_reply(
                label, req.callback, recorded, s.reply, ignore_sn=self.options.ignore_sn
            )


async def send_replay(
    script: Script, options: SendOptions, *, on_line: Callable[[str], None] | None = None
) -> SendResult:
    """Send the recorded requests of ``script`` to ``options.outlet`` and diff the replies.

    Raises UserError when the outlet cannot be reached or the capture has no requests.
    """
    return await _Sender(script, options, on_line).run()


def _destructive(req: RecordedRequest) -> str | None:
    """Why sending ``req`` may restart, reset, update or recalibrate the outlet, if it
    may: its callback, or one its duplicate keys hide (the outlet's parser may keep
    another ``payload`` or ``callbackName`` than the one this tool shows)."""
    if req.callback in DESTRUCTIVE:
        return "destructive"
    hidden = sorted(possible_callbacks(req.raw) & DESTRUCTIVE)
    if not hidden:
        return None
    names = ", ".join(f"cb{c} ({name_of(c)})" for c in hidden)
    return f"destructive: its duplicate keys hide {names}, which the outlet may act on"


def _why(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return str(exc) or type(exc).__name__
