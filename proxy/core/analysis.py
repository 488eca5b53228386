"""The analysis: request/response links, OTA sessions and their annotations.

Everything is a deterministic function of the event stream: ``feed`` the events one
at a time (live) or all at once (a file) and the result is the same. ``advance(now)``
lets wall-clock time pass in a live session (stall and reply timeouts); ``finish()``
closes a capture (pending requests become unanswered, open updates stalled or
in-progress).

The OTA rules follow protocol/README section 4: the cb21 acknowledgement is optional
(revB never sends it for an outlet update), the revB synchronous cb21 arrives on a new
connection after the restart, progress and results carry fresh packetIDs, a status-0
result before any progress is a firmware quirk, device_type 3 is the outlet's WWW
sub-phase, and the new firmware is only proven by the device info read after the
reboot. Updates are therefore tied together by device and target, never by packetID.
"""

from __future__ import annotations

import gc
import json
import math
from array import array
from collections import deque
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple, get_args

from proxy.core import protocol
from proxy.core.events import Close, Data, Event, Open, Transport, time_label
from proxy.core.framing import Frame, Framer
from proxy.core.model import (
    Annotation,
    Connection,
    Link,
    Message,
    OtaSession,
    Relation,
    RowList,
    Severity,
    Target,
)
from proxy.core.protocol import decode
from proxy.core.protocol.ota import (
    PHASE_NAMES,
    WWW_DEVICE_TYPE,
    target_of_device_type,
    target_of_request,
)

_NO_LINK = array("i", [-1])

DEFAULT_STALL_WINDOW = 60.0
DEFAULT_REPLY_TIMEOUT = 30.0
# A deco that still reports its old firmware this long after a successful result, without
# ever having been seen down, did not take the update. Home Assistant re-reads at 10, 20,
# 30 ... s until the version changes, so an earlier old version only means "not yet".
DECO_REBOOT_GRACE = 60.0

TARGETS: frozenset[Target] = frozenset(get_args(Target))
FINAL_OUTCOMES = frozenset({"succeeded", "failed", "refused"})
FW_CALLBACKS = frozenset({12, 20})
OTA_PUSHES = frozenset({21, 22, 23})
# outlet callbacks the OTA tracking reads beyond request/reply matching
_OUTLET_SPECIAL = FW_CALLBACKS | OTA_PUSHES
# The outlet pushes each OTA message to every connected app, a moment apart.
COPY_WINDOW = 2.0
OTA_RELATIONS: dict[int, Relation] = {21: "ota-sync", 22: "ota-progress", 23: "ota-result"}


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic GC while building a large analysis.

    Analysing a capture allocates millions of small objects that live as long as the
    analysis and form no cycles; each GC pass would walk all of them again, which made
    a 1M-message capture several times slower.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def device_key(outlet_addr: str) -> str:
    """The outlet a connection reaches: its host, since TCP and WS use other ports."""
    host, sep, port = outlet_addr.rpartition(":")
    if sep and port.isdigit():
        return host.strip("[]")
    return outlet_addr


def _a(word: str) -> str:
    """The indefinite article for ``word`` ("an outlet", "a deco")."""
    return "an" if word[:1].lower() in "aeiou" else "a"


def _module(target: str) -> str:
    """The cb12/cb20 block of a target's firmware."""
    return "IM" if target == "outlet" else "PM"


def _duration(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.1f} s"


def _compact(value: Any, limit: int = 40) -> str:
    try:
        text = json.dumps(value, separators=(",", ":"))
    except (TypeError, ValueError, RecursionError):
        return "(unprintable)"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def fmt_t(t: float) -> str:
    """A time as people read it: the local wall clock for recordings, seconds for
    synthetic traces (whose clock starts near 0). Total (never raises, for any float):
    every time in a reason goes through :func:`proxy.core.events.time_label`."""
    return time_label(t)


class Counts(NamedTuple):
    """Totals for the summary line (a bounded analysis counts what it forgot)."""

    messages: int
    connections: int
    links: int
    invalid: int
    sessions: int


@dataclass(slots=True)
class _Pending:
    """A request waiting for its reply."""

    msg_id: int
    t: float
    conn: str
    key: tuple[str, Any]


@dataclass(slots=True)
class _Device:
    """What the analysis knows about one outlet."""

    key: str
    sn: Any = None
    # target -> (running fw, available fw), from the latest cb20/cb12
    firmware: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)
    open_conns: set[str] = field(default_factory=set)
    # target -> the latest cb20 reply that carried its block (what the outlet offered)
    offers: dict[str, Message] = field(default_factory=dict)
    # hardware revision "A"/"B" once the traffic shows it, and what showed it
    revision: str | None = None
    revision_why: str = ""


class Analysis:
    """Incremental analysis of one capture.

    Public state, append-only except where noted (read it; never mutate it):

    - ``messages``: every decoded message, ``messages[i].id == i``, in time order.
      A message's ``kind``, ``callback``/``name`` (for pure acks) and ``annotations``
      may change after it was added (a reply arriving, a timeout, a stall).
    - ``links``: every Link, in the order they were drawn.
    - ``sessions``: every OtaSession (fields change while the update goes on).
    - ``connections``: conn id -> Connection.
    - ``rows``: the timeline: one Row per message and per connection open/close.
    - ``generation``: bumped on every change, so a view can tell it must repaint.
    """

    def __init__(
        self,
        *,
        stall_window: float = DEFAULT_STALL_WINDOW,
        reply_timeout: float = DEFAULT_REPLY_TIMEOUT,
    ) -> None:
        self.stall_window = stall_window
        self.reply_timeout = reply_timeout
        self.messages: list[Message] = []
        self.links: list[Link] = []
        self.sessions: list[OtaSession] = []
        self.connections: dict[str, Connection] = {}
        self.rows = RowList(self.messages)
        self.generation = 0
        self.first_t: float | None = None
        self.last_t: float | None = None
        self.finished = False
        self._framer = Framer()
        # link index: the first link of each message (-1, or past the end: none);
        # further ones in _more_links
        self._first_link = array("i")
        self._more_links: dict[int, list[int]] = {}
        self._session_by_msg: dict[int, OtaSession] = {}
        self._pending: dict[tuple[str, Any], _Pending] = {}
        self._pending_order: deque[_Pending] = deque()
        self._devices: dict[str, _Device] = {}
        self._strings: dict[str, str] = {}
        # nothing can time out before this (see _tick); saves a check per event
        self._deadline = math.inf
        # sessions still able to take messages, by (device, target)
        self._open: dict[tuple[str, str], OtaSession] = {}
        # succeeded sessions waiting for the firmware read after the reboot, by (device,
        # target): apart from _open, so a new request meanwhile cannot take their place
        self._verifying: dict[tuple[str, str], OtaSession] = {}
        # refused sessions whose app may keep waiting (see _check_refusals); the time of
        # the latest cb21 on each connection
        self._refusals: deque[tuple[OtaSession, Message]] = deque()
        self._last_cb21: dict[str, float] = {}
        # recent OTA pushes by (device, bytes): the outlet sends each to every app
        self._recent_pushes: dict[tuple[str, bytes], tuple[int, float]] = {}
        self._push_order: deque[tuple[float, tuple[str, bytes]]] = deque()
        # (message id, annotation index) of annotations made after the message was
        # added (a timeout, a restart, a stall), for views that print as they go
        self.late_annotations: list[tuple[int, int]] = []

    # ------------------------------------------------------------------ feeding

    def feed(self, event: Event) -> None:
        """Add one wire event.

        Events should come in non-decreasing ``t`` (the readers report any that do
        not); one that goes back in time is analysed at the time of the event before
        it, so message ids stay in time order and no reply is "answered" before it
        was asked.
        """
        t = event.t
        if self.first_t is None:
            self.first_t = t
        elif self.last_t is not None and t < self.last_t:
            t = self.last_t
            event = replace(event, t=t)
        if t > self._deadline:
            self._tick(t)
        self.last_t = t
        self.generation += 1
        if type(event) is Data:
            frames = self._framer.feed(event)
            if frames:
                self._add_frames(frames, event.conn)
        elif isinstance(event, Open):
            self.connections[event.conn] = Connection(
                event.conn, event.transport, event.app, event.outlet, t
            )
            self._framer.feed(event)
            self.rows.add_connection(t, "open", event.conn)
            self._device_of(event.conn).open_conns.add(event.conn)
        elif isinstance(event, Close):
            # Leftover bytes become invalid frames before the close row.
            frames = self._framer.feed(event)
            if frames:
                self._add_frames(frames, event.conn)
            self._on_close(event)
            self.rows.add_connection(t, "close", event.conn)

    def _add_frames(self, frames: list[Frame], conn: str) -> None:
        """Decode, record and correlate the frames one event completed: the hot path
        of a million-message capture, hence written out in one loop."""
        info = self.connections.get(conn)
        transport: Transport = "tcp"
        if info is not None:
            # One string object per connection and per serial, not one per message.
            conn, transport = info.conn, info.transport
        messages = self.messages
        strings = self._strings
        add_row = self.rows.add_message
        for frame in frames:
            msg_id = len(messages)
            msg = decode(frame, msg_id, transport)
            msg.conn = conn
            sn = msg.sn
            if type(sn) is str:
                msg.sn = strings.setdefault(sn, sn)
            messages.append(msg)
            add_row(msg_id)
            if msg.kind == "invalid":
                continue
            if msg.side == "app":
                self._on_request(msg)
            else:
                answered = self._match_reply(msg) if self._pending else None
                if msg.callback in _OUTLET_SPECIAL:
                    self._on_special(msg, answered)

    def feed_all(self, events: Iterable[Event]) -> None:
        """Feed many events; the cyclic GC is paused meanwhile (see ``gc_paused``)."""
        feed = self.feed
        with gc_paused():
            for event in events:
                feed(event)

    def advance(self, now: float) -> None:
        """Let time pass without traffic (live view): timeouts and stalls."""
        if self.last_t is not None and now > self.last_t and now > self._deadline:
            self._tick(now)

    def finish(self) -> None:
        """The capture ended: settle what is still open."""
        if self.finished:
            return
        self.finished = True
        for pending in list(self._pending_order):
            if self._pending.get(pending.key) is pending:
                self._unanswered(pending, "the capture ended before a reply came")
        self._pending.clear()
        self._pending_order.clear()
        end = self.last_t if self.last_t is not None else 0.0
        for session in self.sessions:
            if session.outcome not in FINAL_OUTCOMES and session.outcome != "stalled":
                quiet = end - session.last_activity
                if quiet > self.stall_window:
                    self._stall(session)
                else:
                    session.outcome = "in-progress"
                    session.reason = (
                        f"the capture ends {quiet:.1f} s after the update's last message, "
                        f"inside the {self.stall_window:g} s stall window, with no outcome yet"
                    )
        for session in self._verifying.values():
            session.reason += (
                f"; not verified: the capture ends before any read of the "
                f"{_module(session.target)} firmware after the reboot"
                + (" (the deco was seen rebooting)" if session.module_down_seen else "")
            )
        self._verifying.clear()
        self.generation += 1

    # ------------------------------------------------------------------ queries

    def links_of(self, msg_id: int) -> list[Link]:
        """Every link that starts or ends at this message, in drawing order."""
        if not 0 <= msg_id < len(self._first_link):
            return []
        first = self._first_link[msg_id]
        if first < 0:
            return []
        more = self._more_links.get(msg_id, ())
        return [self.links[first], *(self.links[i] for i in more)]

    def session_of(self, msg_id: int) -> OtaSession | None:
        """The OTA session this message belongs to, if any."""
        return self._session_by_msg.get(msg_id)

    def counts(self) -> Counts:
        """How many messages, connections, links, invalid frames and OTA updates there were."""
        return Counts(
            messages=len(self.messages),
            connections=len(self.connections),
            links=len(self.links),
            invalid=sum(1 for m in self.messages if m.kind == "invalid"),
            sessions=len(self.sessions),
        )

    def numbered_sessions(self) -> list[tuple[int, OtaSession]]:
        """The OTA sessions held, each with its number (1 for the first update)."""
        return list(enumerate(self.sessions, 1))

    def to_json(self) -> dict[str, Any]:
        """The ``analyze --json`` document (DESIGN 4.4)."""
        return {
            "version": 1,
            "messages": [message_json(m) for m in self.messages],
            "links": [link_json(link) for link in self.links],
            "ota": [session_json(s) for s in self.sessions],
        }

    # ------------------------------------------------------------------ time

    def _tick(self, now: float) -> None:
        """Expire replies and stall updates whose deadline is before ``now``."""
        order = self._pending_order
        waiting = self._pending
        while order:
            pending = order[0]
            if waiting.get(pending.key) is not pending:
                order.popleft()  # answered: forgotten here, so the deadline is a live one
            elif pending.t + self.reply_timeout < now:
                order.popleft()
                del waiting[pending.key]
                self._unanswered(
                    pending, f"no reply within {self.reply_timeout:g} s while traffic went on"
                )
                self.generation += 1
            else:
                break
        deadline = order[0].t + self.reply_timeout if order else math.inf
        for session in list(self._open.values()):
            if session.outcome != "in-progress":
                continue
            if now - session.last_activity > self.stall_window:
                self._stall(session)
                self.generation += 1
            else:
                deadline = min(deadline, session.last_activity + self.stall_window)
        if self._refusals:
            deadline = min(deadline, self._check_refusals(now))
        self._deadline = deadline

    def _annotate_late(self, msg_id: int, code: str, severity: Severity, text: str) -> None:
        msg = self.messages[msg_id]
        msg.annotate(code, severity, text)
        self.late_annotations.append((msg_id, len(msg.annotations) - 1))

    def _stall(self, session: OtaSession) -> None:
        """Mark an update stalled; the wording does not depend on when it was noticed."""
        session.outcome = "stalled"
        what = self._describe(session)
        session.reason = (
            f"nothing for the {what} for longer than the {self.stall_window:g} s stall "
            f"window after its last message at {fmt_t(session.last_activity)}, while the "
            "capture went on"
        )
        last = session.messages[-1] if session.messages else None
        if last is not None and not self.messages[last].has("ota-stalled"):
            self._annotate_late(
                last,
                "ota-stalled",
                "error",
                f"the {what} stalled: this is its last message and nothing followed for "
                f"longer than the {self.stall_window:g} s stall window",
            )

    def _unanswered(self, pending: _Pending, why: str, close: Close | None = None) -> None:
        msg = self.messages[pending.msg_id]
        if msg.callback == 21:
            self._ota_no_ack(msg, why, close)
            return
        if protocol.is_fire_and_forget(msg.callback):
            return
        self._annotate_late(msg.id, "unanswered-request", "warning", f"no reply: {why}")

    # ------------------------------------------------------------------ connections

    def _device_of(self, conn: str) -> _Device:
        info = self.connections.get(conn)
        key = device_key(info.outlet) if info is not None else "?"
        device = self._devices.get(key)
        if device is None:
            device = self._devices[key] = _Device(key)
        return device

    def _on_close(self, event: Close) -> None:
        info = self.connections.get(event.conn)
        if info is not None:
            info.closed = event.t
            info.closed_by = event.by
            info.error = event.error
        # Requests pending on this connection can no longer be answered.
        for key in [k for k in self._pending if k[0] == event.conn]:
            pending = self._pending.pop(key)
            self._unanswered(pending, f"connection {event.conn} closed before a reply came", event)
        device = self._device_of(event.conn)
        device.open_conns.discard(event.conn)
        if event.by == "app":
            self._app_left(event)
        if event.by not in ("outlet", None):
            return  # the app left, or the proxy stopped: the outlet did not restart
        who = (
            f"the outlet closed connection {event.conn}"
            if event.by == "outlet"
            else f"connection {event.conn} closed (by which side is not known)"
        )
        for (dev, target), session in [*self._open.items(), *self._verifying.items()]:
            if dev != device.key or target != "outlet" or session.outcome == "refused":
                continue
            session.restarts += 1
            if session.phase == "rebooting" and not session.rebooted_after_result:
                session.rebooted_after_result = True
                session.reboot_t = event.t
            session.last_activity = max(session.last_activity, event.t)
            last = session.last_by_conn.get(event.conn)
            if last is not None and not self.messages[last].has("ota-restart"):
                why = (
                    "every revision reboots after a successful result"
                    if session.phase == "rebooting"
                    else "a revB outlet restarts as soon as it gets an outlet update"
                    if session.phase == "requested" and device.revision != "A"
                    else "it went down in the middle of the update"
                )
                self._annotate_late(
                    last,
                    "ota-restart",
                    "info",
                    f"{who} at {fmt_t(event.t)} after this message: the outlet restarted "
                    f"during the update ({why}); the app must reconnect",
                )

    # ------------------------------------------------------------------ correlation

    def _link(self, src: int, dst: int, relation: Relation, reason: str) -> None:
        index = len(self.links)
        self.links.append(Link(src, dst, relation, reason))
        first = self._first_link
        top = max(src, dst)
        if top >= len(first):  # grown only as far as the latest linked message
            first.extend(_NO_LINK * (top + 1 - len(first)))
        for end in (src, dst):
            if first[end] < 0:
                first[end] = index
            else:
                self._more_links.setdefault(end, []).append(index)

    def _on_special(self, msg: Message, answered: Message | None) -> None:
        """An outlet message the OTA tracking reads: firmware versions, OTA status."""
        cb = msg.callback
        if cb in FW_CALLBACKS:
            self._on_firmware(msg)
        if answered is None and cb in OTA_PUSHES:
            original = self._copy_of(msg)
            if original is not None:
                self._on_copy(msg, original)
                return
        if cb == 21 and answered is None:
            self._on_ota_sync(msg)
        elif cb == 22:
            self._on_progress(msg)
        elif cb == 23:
            self._on_result(msg)

    def _copy_of(self, msg: Message) -> Message | None:
        """The same OTA push sent earlier to another app's connection, if any.

        The outlet sends each OTA message to every connected app a moment apart; a copy
        can also come late (a slow connection), which still counts while its update is
        open, so a late copy of a result does not start a phantom update.
        """
        key = (self._device_of(msg.conn).key, msg.raw.strip())
        seen = self._recent_pushes.get(key)
        if seen is not None:
            original = self.messages[seen[0]]
            if original.conn != msg.conn:
                session = self._session_by_msg.get(original.id)
                still_open = session is not None and self._holds(session)
                if msg.t - seen[1] <= COPY_WINDOW or still_open:
                    return original
        self._recent_pushes[key] = (msg.id, msg.t)
        order = self._push_order
        order.append((msg.t, key))
        horizon = msg.t - max(COPY_WINDOW, self.stall_window)
        while order and order[0][0] < horizon:
            t, old = order.popleft()
            if self._recent_pushes.get(old, (0, None))[1] == t:
                del self._recent_pushes[old]
        return None

    def _on_copy(self, msg: Message, original: Message) -> None:
        """A copy joins its original's update; it does not count as progress again."""
        session = self._session_by_msg.get(original.id)
        if session is None:
            return
        self._add(session, msg)
        for note in original.annotations:
            if note.code in ("spurious-ota-result", "www-phase-complete", "ota-failed"):
                msg.annotate(note.code, note.severity, note.text)
        assert msg.callback is not None
        if session.request is not None:
            self._link(
                session.request,
                msg.id,
                OTA_RELATIONS[msg.callback],
                f"the same push as #{original.id} (packetID {msg.packet_id}), which the "
                f"outlet also sent to {original.conn}: every connected app gets each OTA "
                "message",
            )

    def _on_request(self, msg: Message) -> None:
        pid = msg.packet_id
        if pid is not None and isinstance(pid, (int, str)):
            key = (msg.conn, pid)
            pending = _Pending(msg.id, msg.t, msg.conn, key)
            previous = self._pending.get(key)
            if previous is not None:
                self._unanswered(previous, f"packetID {pid} was reused by message {msg.id}")
            self._pending[key] = pending
            order = self._pending_order
            while order and self._pending.get(order[0].key) is not order[0]:
                order.popleft()  # answered (as in _tick): do not keep them for a whole timeout
            order.append(pending)
            if msg.t + self.reply_timeout < self._deadline:
                self._deadline = msg.t + self.reply_timeout
        if msg.callback == 21:
            self._on_ota_request(msg)

    def _match_reply(self, msg: Message) -> Message | None:
        pid = msg.packet_id
        if pid is None or not isinstance(pid, (int, str)):
            return None
        pending = self._pending.get((msg.conn, pid))
        if pending is None:
            return None
        request = self.messages[pending.msg_id]
        if msg.callback is not None and msg.callback != request.callback:
            return None
        if request.callback == 21 and msg.args is not None and msg.puback is None:
            # Status args without a PUBACK: the revB synchronous form, not the ack (which
            # is still missing). With a PUBACK it is the ack, whatever payload it carries.
            return None
        del self._pending[pending.key]
        msg.kind = "response"
        protocol.adopt_request(msg, request)
        if request.callback == 21:
            self._on_ota_ack(request, msg)
        else:
            delay = (msg.t - request.t) * 1000
            self._link(
                request.id,
                msg.id,
                "response",
                f"same connection {msg.conn} and packetID {pid}; answered in {delay:.1f} ms",
            )
        return request

    # ------------------------------------------------------------------ OTA

    def _describe(self, session: OtaSession) -> str:
        when = f" requested at {fmt_t(session.started)}" if session.request is not None else ""
        return f"{session.target} update{when}"

    def _add(self, session: OtaSession, msg: Message) -> None:
        session.messages.append(msg.id)
        session.last_by_conn[msg.conn] = msg.id
        session.last_activity = msg.t
        self._deadline = min(self._deadline, msg.t + self.stall_window)
        self._session_by_msg[msg.id] = session
        if session.sn is None and msg.sn is not None:
            session.sn = msg.sn

    def _on_firmware(self, msg: Message) -> None:
        """Remember versions (for fw_before/expected) and verify updates after a reboot."""
        cb = msg.callback
        assert cb is not None
        versions = protocol.firmware_versions(cb, msg.args)
        if not versions:
            return
        device = self._device_of(msg.conn)
        if msg.sn is not None:
            device.sn = msg.sn
        if cb == 20:
            for target in versions:
                device.offers[target] = msg
        deco = self._verifying.get((device.key, "deco"))
        if cb == 12 and deco is not None and deco.phase == "rebooting":
            running_pm = versions.get("deco", (None, None))[0]
            if running_pm is None:  # PM missing or blank: the deco is rebooting
                deco.module_down_seen = True
        for target, (running, available) in versions.items():
            known = device.firmware.get(target, (None, None))
            if cb == 12:
                device.firmware[target] = (running, known[1])
            else:
                device.firmware[target] = (running, available)
            session = self._verifying.get((device.key, target))
            if session is None or session.phase != "rebooting" or running is None:
                continue
            if not self._after_reboot(session, msg, running):
                continue
            self._verify(session, msg, running)

    def _after_reboot(self, session: OtaSession, msg: Message, running: str) -> bool:
        """Whether ``msg`` reports the firmware the updated module runs after its reboot.

        The outlet proves its reboot by dropping its connections after the result (or by
        the cb12 it pushes on a connection opened afterwards); until then a read shows
        the old firmware. The deco reboots without dropping anything: a read that still
        shows the old version before the deco was seen down, and within
        DECO_REBOOT_GRACE of the result, is from before its reboot.
        """
        info = self.connections.get(msg.conn)
        result_t = session.ended if session.ended is not None else session.last_activity
        if session.target == "outlet":
            if info is None:
                return False
            if session.reboot_t is not None and info.opened >= session.reboot_t:
                return True  # a connection made after the outlet went down
            # the cb12 the outlet pushes when it comes back, on a new connection
            return msg.kind == "push" and info.opened > result_t
        return (
            session.module_down_seen
            or (session.fw_before is not None and running != session.fw_before)
            or msg.t - result_t > DECO_REBOOT_GRACE
        )

    def _verify(self, session: OtaSession, msg: Message, running: str) -> None:
        self._add(session, msg)
        session.fw_after = running
        session.phase = "verified"
        module = "IM" if session.target == "outlet" else "PM"
        source = f"cb{msg.callback} {'reply' if msg.kind == 'response' else 'push'}"
        if session.fw_expected is None:
            session.verified = None
            verdict = "the expected version is unknown (no cb20 before the update)"
        elif running == session.fw_expected:
            session.verified = True
            verdict = f"it matches the expected {session.fw_expected}"
        else:
            session.verified = False
            verdict = f"it is NOT the expected {session.fw_expected}"
            msg.annotate(
                "fw-mismatch",
                "error",
                f"after the {self._describe(session)} the {module} reports firmware {running}, "
                f"but {session.fw_expected} was expected (before: {session.fw_before})",
            )
        session.reason += f"; after the reboot the {module} runs {running}: {verdict}"
        if session.request is not None:
            self._link(
                session.request,
                msg.id,
                "ota-verify",
                f"first {source} from the same device after the successful result "
                f"and the reboot; it reports {module} fw_rev {running}, {verdict}",
            )
        del self._verifying[(self._session_device(session), session.target)]

    def _close_session(self, session: OtaSession) -> None:
        """No more messages for this update (a successor may already hold its key)."""
        key = (self._session_device(session), session.target)
        if self._open.get(key) is session:
            del self._open[key]

    def _session_device(self, session: OtaSession) -> str:
        return session.outlet_addr or "?"

    def _holds(self, session: OtaSession) -> bool:
        """Whether the update still takes messages (open, or awaiting verification)."""
        key = (self._session_device(session), session.target)
        return self._open.get(key) is session or self._verifying.get(key) is session

    def _await_verification(self, session: OtaSession) -> None:
        """A succeeded update leaves _open (a new request may come meanwhile) and waits
        for the firmware read after its reboot."""
        self._close_session(session)
        key = (self._session_device(session), session.target)
        older = self._verifying.get(key)
        if older is not None and older is not session:
            older.reason += (
                f"; not verified: a later {session.target} update succeeded at "
                f"{fmt_t(session.ended or session.last_activity)} before its firmware was read"
            )
        self._verifying[key] = session

    def _on_ota_request(self, msg: Message) -> None:
        target_no, method_no = protocol.ota_request_target(msg.args)
        target = target_of_request(target_no)
        if target is None:
            return
        device = self._device_of(msg.conn)
        key = (device.key, target)
        self._gave_up_by_request(msg, device, target)
        self._last_cb21[msg.conn] = msg.t
        running = self._open.get(key)
        if running is not None and running.outcome == "in-progress":
            # Another request for an update that is already running (an app that heard
            # no ack and asks again, or a second app): the outlet runs one update.
            self._add(running, msg)
            since = (
                f"requested at {fmt_t(running.started)}"
                if running.request is not None
                else f"seen since {fmt_t(running.started)}"
            )
            msg.annotate(
                "ota-retry",
                "info",
                f"{_a(target)} {target} update is already running ({since}); the outlet "
                "carries on with it, and its progress and results count for that update",
            )
            return
        old = self._open.pop(key, None)
        if old is not None and old.outcome not in FINAL_OUTCOMES:
            old.reason = (old.reason + "; " if old.reason else "") + (
                f"superseded by a new {target} update requested at {fmt_t(msg.t)}"
            )
        before, expected = device.firmware.get(target, (None, None))
        session = OtaSession(
            target=target,
            request=msg.id,
            method={0: "wifi", 1: "via-outlet"}.get(method_no if method_no is not None else -1),  # type: ignore[arg-type]
            started=msg.t,
            last_activity=msg.t,
            fw_before=before,
            fw_expected=expected,
            sn=device.sn,
            outlet_addr=device.key,
        )
        session.reason = f"{target} update requested at {fmt_t(msg.t)} on {msg.conn}"
        earlier = self._verifying.get(key)
        if earlier is not None:
            session.reason += (
                f", while the {self._describe(earlier)} (succeeded at "
                f"{fmt_t(earlier.ended or earlier.last_activity)}) waits for its firmware read "
                "after the reboot; that update keeps its own verification"
            )
        self.sessions.append(session)
        self._open[key] = session
        self._add(session, msg)

    def _on_ota_ack(self, request: Message, reply: Message) -> None:
        session = self._session_by_msg.get(request.id)
        delay = (reply.t - request.t) * 1000
        carries = (
            f"; it also carries a payload {_compact(reply.args)}, but with the "
            "request's packetID and a PUBACK it is the acknowledgement, not a revB "
            "synchronous status (which has no PUBACK)"
            if reply.args is not None
            else ""
        )
        self._link(
            request.id,
            reply.id,
            "ota-ack",
            f"same connection {reply.conn} and packetID {reply.packet_id}: the OTA request's "
            f"immediate acknowledgement, PUBACK {reply.puback}, after {delay:.1f} ms{carries}",
        )
        target_no, _ = protocol.ota_request_target(request.args)
        device = self._device_of(reply.conn)
        if target_of_request(target_no) == "outlet" and device.revision is None:
            device.revision = "A"
            device.revision_why = (
                f"it answered an outlet update request at {fmt_t(reply.t)} with PUBACK "
                f"{reply.puback}, which revB never does"
            )
        if session is None:
            return
        self._add(session, reply)
        context = ""
        if reply.puback == 0:
            # a repeated request's refusal stands for the update only if nothing else has
            # spoken for it yet (the same test as below)
            running = request.id != session.request and session.phase != "requested"
            context = self._refusal_context(session, request, reply, running)
            self._note_refusal(reply, context)
        if request.id != session.request:
            # A repeated request's ack speaks for the update only while nothing else
            # has: no ack, sync status or progress yet.
            if session.phase == "requested" and reply.puback == 1:
                session.phase = "accepted"
            elif session.phase == "requested" and reply.puback == 0:
                self._refuse(session, reply, context)
            return
        if reply.puback == 0 and session.outcome not in FINAL_OUTCOMES:
            self._refuse(session, reply, context)
        elif session.phase == "requested":
            session.phase = "accepted"

    def _refuse(self, session: OtaSession, reply: Message, context: str) -> None:
        session.outcome = "refused"
        session.phase = "refused"
        session.ended = reply.t
        session.reason = (
            f"the outlet answered the {self._describe(session)} with PUBACK 0: {context}"
        )
        self._close_session(session)
        if session.request is not None:
            self._refusals.append((session, reply))
            self._deadline = min(self._deadline, reply.t + self.stall_window)

    def _note_refusal(self, reply: Message, context: str) -> None:
        """Give the PUBACK 0 of a cb21 the reason the traffic shows, not a generic one."""
        text = f"PUBACK 0: the outlet refused this request; {context}"
        for i, note in enumerate(reply.annotations):
            if note.code == "puback-failure":
                reply.annotations[i] = Annotation(note.code, note.severity, text)
                return
        reply.annotate("puback-failure", "warning", text)

    def _refusal_context(
        self, session: OtaSession, request: Message, reply: Message, joined_running: bool
    ) -> str:
        """What the capture knows about why an update was refused: an update already
        running, the module rebooting after an update, the last offer, the revision."""
        target = session.target
        device = self._device_of(reply.conn)
        facts: list[str] = []
        if joined_running:
            facts.append(
                f"{_a(target)} {self._describe(session)} is already running and goes on; "
                "only this request was refused"
            )
        elif session.request is not None and request.id != session.request:
            facts.append(
                f"the earlier request #{session.request} got no answer and nothing of its "
                "update followed, so this refusal stands for that update"
            )
        earlier = self._verifying.get((device.key, target))
        if earlier is not None and earlier is not session:
            down = (
                f"and the {target} was seen rebooting (PM missing or blank in cb12)"
                if earlier.module_down_seen
                else f"and the {target} reboots after a successful update"
            )
            facts.append(
                f"the {self._describe(earlier)} succeeded at "
                f"{fmt_t(earlier.ended or earlier.last_activity)}, its new firmware has not "
                f"been read yet {down}; this refusal does not undo that update"
            )
        offer = device.offers.get(target)
        module = _module(target)
        versions = protocol.firmware_versions(20, offer.args).get(target) if offer else None
        if offer is None or versions is None:
            facts.append(
                f"no cb20 reply before it in the capture, so whether a newer {module} firmware "
                "was available is not known"
            )
        else:
            running, available = versions
            # a cb12 since (the update's verification above all) may show a newer version
            now_running = device.firmware.get(target, (running, None))[0]
            if available is not None and available == running:
                facts.append(
                    f"the last cb20 (#{offer.id} at {fmt_t(offer.t)}) showed {module} "
                    f"{running} with nothing newer: already up to date"
                )
            elif available is not None and available == now_running:
                facts.append(
                    f"the last cb20 (#{offer.id} at {fmt_t(offer.t)}) offered {module} "
                    f"{available}, which the {target} has reported running since: already up "
                    "to date"
                )
            elif available is not None:
                facts.append(
                    f"the last cb20 (#{offer.id} at {fmt_t(offer.t)}) offered {module} "
                    f"{available} over the running {running or '?'}, so it was not for "
                    "lack of an update"
                )
            else:
                facts.append(
                    f"the last cb20 (#{offer.id} at {fmt_t(offer.t)}) named no available "
                    f"{module} firmware"
                )
        facts.append(self._revision_text(device))
        return f"{target} target; " + "; ".join(facts)

    def _revision_text(self, device: _Device) -> str:
        if device.revision is None:
            return "outlet revision unknown"
        return f"outlet revision {device.revision}, as {device.revision_why}"

    def _ota_no_ack(self, msg: Message, why: str, close: Close | None) -> None:
        """A cb21 whose acknowledgement never came: say what that means for its target
        and the outlet's revision, as far as the traffic shows them."""
        session = self._session_by_msg.get(msg.id)
        target_no, _ = protocol.ota_request_target(msg.args)
        device = self._device_of(msg.conn)
        info = self.connections.get(msg.conn)
        text = f"no acknowledgement came: {why}"
        if target_of_request(target_no) == "outlet":
            restarted = (
                close is not None
                and close.by == "outlet"
                and info is not None
                and info.transport == "tcp"
                and session is not None
                and session.phase == "requested"
                and device.revision != "A"
            )
            if restarted and close is not None:
                after = _duration(close.t - msg.t)
                if device.revision is None:
                    device.revision = "B"
                    device.revision_why = (
                        f"it closed TCP connection {msg.conn} {after} after an outlet update "
                        "request without answering it"
                    )
                text = (
                    f"no acknowledgement came: the outlet closed the TCP connection {after} "
                    "after this request, as a revB outlet does: it restarts at once on an "
                    "outlet update and never sends the acknowledgement; the status comes as a "
                    "synchronous cb21 once the app reconnects"
                )
            elif device.revision == "B":
                text += (
                    f"; {self._revision_text(device)}; a revB outlet never acknowledges an "
                    "outlet update: the status comes as a synchronous cb21 after the reconnect"
                )
            elif device.revision == "A":
                text += (
                    f"; {self._revision_text(device)}; the acknowledgement is optional: a revA "
                    "outlet may not send it before it gets busy, and the reference client does "
                    "not wait for it"
                )
            else:
                text += (
                    "; outlet revision unknown: a revA outlet may not acknowledge before it "
                    "gets busy, a revB outlet never acknowledges an outlet update; the "
                    "reference client does not wait for it"
                )
        elif target_of_request(target_no) == "deco":
            text += (
                "; for a deco update the outlet is expected to acknowledge on either revision "
                "(the missing acknowledgement is documented only for outlet updates); the "
                f"reference client does not wait for it; {self._revision_text(device)}"
            )
        else:
            text += "; the reference client does not wait for the acknowledgement"
        self._annotate_late(msg.id, "fire-and-forget", "info", text)

    def _latest_sessions(self, device_key: str) -> Iterator[OtaSession]:
        """The newest update per target on this outlet (sessions are few)."""
        seen: set[str] = set()
        for session in reversed(self.sessions):
            if session.outlet_addr == device_key and session.target not in seen:
                seen.add(session.target)
                yield session
                if len(seen) == len(TARGETS):
                    return

    def _is_requesting_app(self, session: OtaSession, conn: str) -> bool:
        """Whether ``conn`` is the app that asked for the update: its connection, or a
        later one from the same host after that one closed (a reconnect)."""
        if session.request is None:
            return False
        request = self.messages[session.request]
        if conn == request.conn:
            return True
        asked, info = self.connections.get(request.conn), self.connections.get(conn)
        return (
            asked is not None
            and info is not None
            and asked.closed is not None
            and asked.closed <= info.opened
            and device_key(asked.app) == device_key(info.app)
        )

    def _waited_out(self, session: OtaSession, t: float) -> Message | None:
        """The update's last message, if the app has had no OTA news for longer than a
        stall window by ``t`` (the reference client gives up then), and has not yet
        been seen giving up on it."""
        if session.app_gave_up is not None or not session.messages:
            return None
        if session.outcome not in ("in-progress", "stalled", "refused"):
            return None
        last = self.messages[session.messages[-1]]
        return last if t - last.t > self.stall_window else None

    def _gave_up_note(self, session: OtaSession, last: Message, t: float, what: str) -> str:
        refused = (
            "; the outlet had refused it, but the reference client ignores PUBACK 0 and "
            "waits for progress all the same"
            if session.outcome == "refused"
            else ""
        )
        phases = (
            " (its stall timer runs on across the WWW and main phases)"
            if any(dt == WWW_DEVICE_TYPE for _, dt, _ in session.progress)
            else ""
        )
        return (
            f"the app gave up on the {self._describe(session)}: {what} {t - last.t:.1f} s "
            f"after the update's last message (#{last.id} at {fmt_t(last.t)}), longer than "
            f"the {self.stall_window:g} s without OTA news after which the reference client "
            f"gives up{phases}{refused}"
        )

    def _app_left(self, event: Close) -> None:
        """The requesting app closed its connection: did it give up on its update?"""
        info = self.connections.get(event.conn)
        if info is None:
            return
        for session in list(self._latest_sessions(device_key(info.outlet))):
            last = self._waited_out(session, event.t)
            if last is None or not self._is_requesting_app(session, event.conn):
                continue
            session.app_gave_up = event.t
            what = f"it closed connection {event.conn} at {fmt_t(event.t)},"
            note = self._gave_up_note(session, last, event.t, what)
            session.reason += (
                f"; the app gave up at {fmt_t(event.t)}: it closed connection {event.conn} "
                f"{event.t - last.t:.1f} s after the update's last message"
            )
            where = session.last_by_conn.get(event.conn, session.messages[-1])
            self._annotate_late(where, "app-gave-up", "warning", note)

    def _gave_up_by_request(self, msg: Message, device: _Device, target: str) -> None:
        """A new cb21 from the app a stall window after its update went quiet."""
        for session in self._latest_sessions(device.key):
            if session.target != target:
                continue
            last = self._waited_out(session, msg.t)
            if last is None or not self._is_requesting_app(session, msg.conn):
                return
            session.app_gave_up = msg.t
            note = self._gave_up_note(session, last, msg.t, "it asks again with this cb21")
            session.reason += f"; the app gave up at {fmt_t(msg.t)} and asked again (#{msg.id})"
            msg.annotate("app-gave-up", "warning", note)
            return

    def _check_refusals(self, now: float) -> float:
        """Refusals whose app kept waiting a stall window; the next such deadline."""
        window = self.stall_window
        refusals = self._refusals
        while refusals and now - refusals[0][1].t > window:
            session, reply = refusals.popleft()
            info = self.connections.get(reply.conn)
            if info is None or info.closed is not None or session.app_gave_up is not None:
                continue  # the app left (or already gave up): it did not wait
            if self._last_cb21.get(reply.conn, -math.inf) > reply.t:
                continue  # it asked again
            polls: dict[int, int] = {}
            messages = self.messages
            for i in range(reply.id + 1, len(messages)):
                later = messages[i]
                if later.t > reply.t + window:
                    break
                if later.side == "app" and later.conn == reply.conn and later.callback:
                    polls[later.callback] = polls.get(later.callback, 0) + 1
            polled = (
                "; meanwhile it sent "
                + ", ".join(f"cb{cb} ×{n}" if n > 1 else f"cb{cb}" for cb, n in polls.items())
                if polls
                else ""
            )
            self._annotate_late(
                reply.id,
                "refusal-ignored",
                "warning",
                f"the app kept waiting after this refusal: {window:g} s later connection "
                f"{reply.conn} is still open and it has sent no new cb21{polled}; the outlet "
                f"refused the {self._describe(session)}, so no progress will come for it (the "
                "reference client ignores PUBACK 0 and waits until its stall timer fires)",
            )
            self.generation += 1
        return refusals[0][1].t + window if refusals else math.inf

    def _session_for(self, msg: Message, target: Target) -> tuple[OtaSession, str]:
        """The open session a push belongs to, or a new one whose request is missing."""
        device = self._device_of(msg.conn)
        session = self._open.get((device.key, target))
        if session is not None and session.phase == "failed-unconfirmed":
            if msg.callback == 22:
                self._unfail(session, msg)
            else:
                session = None
        elif session is not None and session.outcome in FINAL_OUTCOMES:
            session = None  # a finished update awaiting verification takes no progress
        sn = f"same device {msg.sn}" if msg.sn is not None else f"same outlet {device.key}"
        if session is not None:
            return session, (
                f"{sn}; it belongs to the {self._describe(session)}; no other {target} update open"
            )
        before, expected = device.firmware.get(target, (None, None))
        session = OtaSession(
            target=target,
            started=msg.t,
            last_activity=msg.t,
            fw_before=before,
            fw_expected=expected,
            sn=msg.sn,
            outlet_addr=device.key,
        )
        session.reason = (
            f"{target} update seen from {fmt_t(msg.t)} on; its cb21 request is not in the capture"
        )
        self.sessions.append(session)
        self._open[(device.key, target)] = session
        return session, f"{sn}; no {target} update request in the capture"

    def _reopen_if_stalled(self, session: OtaSession, msg: Message) -> None:
        if session.outcome == "stalled":
            session.outcome = "in-progress"
            session.reason += f"; activity resumed at {fmt_t(msg.t)}"

    def _join_ota_push(self, msg: Message) -> tuple[OtaSession, str, int, Any] | None:
        """The update an OTA push (cb21 sync, 22, 23) belongs to, with the push added:
        (session, why, device_type, value); None when its device_type names no target."""
        device_type, value = protocol.ota_device_type(msg.args)
        target = target_of_device_type(device_type)
        if target is None or device_type is None:
            return None
        session, why = self._session_for(msg, target)
        self._reopen_if_stalled(session, msg)
        self._add(session, msg)
        return session, why, device_type, value

    def _on_ota_sync(self, msg: Message) -> None:
        """The revB synchronous cb21 after the restart: [device, 1 continue | 0 fail]."""
        joined = self._join_ota_push(msg)
        if joined is None:
            return
        session, why, _, status = joined
        device = self._device_of(msg.conn)
        if device.revision is None:
            device.revision = "B"
            device.revision_why = (
                f"it sent a synchronous cb21 status at {fmt_t(msg.t)}, which only revB does"
            )
        if session.request is not None:
            request = self.messages[session.request]
            same = (
                "carries the request's packetID"
                if msg.packet_id == request.packet_id
                else f"packetID {msg.packet_id} differs from the request's {request.packet_id}"
            )
            where = "a new connection" if msg.conn != request.conn else "the same connection"
            self._link(
                session.request,
                msg.id,
                "ota-sync",
                f"revB synchronous OTA status on {where} ({msg.conn}) after the restart; "
                f"{same}; {why}",
            )
        if status == 0 and session.outcome not in FINAL_OUTCOMES:
            self._fail(session, msg, "the revB synchronous OTA status reports 0 (failed)")
        elif session.phase in ("requested", "accepted"):
            session.phase = "updating"

    def _on_progress(self, msg: Message) -> None:
        joined = self._join_ota_push(msg)
        if joined is None:
            return
        session, why, device_type, percent = joined
        if type(percent) is int:  # a progress push without a percentage is no data point
            session.progress.append((msg.t, device_type, percent))
        session.phase = "www" if device_type == WWW_DEVICE_TYPE else "downloading"
        if session.request is not None:
            phase = PHASE_NAMES.get(device_type, f"device_type {device_type}")
            self._link(
                session.request,
                msg.id,
                "ota-progress",
                f"OTA progress ({phase} {percent} %) under its own packetID {msg.packet_id}; "
                f"device_type {device_type}: {why}",
            )

    def _on_result(self, msg: Message) -> None:
        joined = self._join_ota_push(msg)
        if joined is None:
            return
        session, why, device_type, status = joined
        started = bool(session.progress)
        if status == 0 and not started and session.request is None and len(session.messages) == 1:
            # Whether this is the spurious early result or a failure cannot be told: the
            # update's start is not in the capture. Progress that follows proves it was
            # the quirk (see _on_progress).
            note = "status 0 with the start of the update not in the capture"
            self._fail(
                session,
                msg,
                "cb23 status 0, and the start of this update is not in the capture (had it "
                "been the spurious early result, progress would have followed)",
            )
            session.phase = "failed-unconfirmed"
            self._open[(self._session_device(session), session.target)] = session
        elif status == 0 and not started:
            note = "spurious early status-0 result before any progress (a known firmware quirk)"
            msg.annotate(
                "spurious-ota-result",
                "info",
                "status 0 before any progress: the firmware sends this at the start of every "
                "update; it is not a failure (the reference client ignores it)",
            )
        elif device_type == WWW_DEVICE_TYPE and status == 1:
            note = "WWW partition finished; the main firmware phase follows"
            msg.annotate(
                "www-phase-complete",
                "info",
                "the outlet's WWW (web UI) partition is updated; this is a sub-phase, not the "
                "end of the update: main-firmware progress (device_type 1) follows",
            )
            session.phase = "www-done"
        elif status == 1:
            note = "final result: succeeded"
            if session.outcome not in FINAL_OUTCOMES or session.outcome == "failed":
                session.outcome = "succeeded"
                session.phase = "rebooting"
                session.ended = msg.t
                session.reason = (
                    f"the {self._describe(session)} succeeded at {fmt_t(msg.t)} "
                    f"(cb23 [{device_type}, 1]); the {session.target} reboots"
                )
                self._await_verification(session)
        elif status == 0:
            note = "final result: failed"
            self._fail(session, msg, f"cb23 [{device_type}, 0] after progress had begun")
        else:
            note = f"unexpected status {status}"
        if session.request is not None:
            self._link(
                session.request,
                msg.id,
                "ota-result",
                f"OTA result ({note}) under its own packetID {msg.packet_id}; "
                f"device_type {device_type}: {why}",
            )

    def _unfail(self, session: OtaSession, msg: Message) -> None:
        """Progress after a lone status-0 result: that result was the spurious one."""
        first = self.messages[session.messages[0]]
        session.outcome = "in-progress"
        session.phase = "downloading"
        session.ended = None
        session.reason = (
            f"{session.target} update seen from {fmt_t(session.started)} on; its cb21 request "
            "is not in the capture"
        )
        note = Annotation(
            "spurious-ota-result",
            "info",
            "status 0 before any progress: progress followed, so this was the spurious early "
            "result the firmware sends at the start of every update, not a failure",
        )
        # replaced in place: late_annotations holds indices into this list
        for i, old in enumerate(first.annotations):
            if old.code == "ota-failed":
                first.annotations[i] = note
                self.late_annotations.append((first.id, i))
                break
        else:
            first.annotations.append(note)
            self.late_annotations.append((first.id, len(first.annotations) - 1))

    def _fail(self, session: OtaSession, msg: Message, why: str) -> None:
        session.outcome = "failed"
        session.phase = "failed"
        session.ended = msg.t
        session.reason = f"the {self._describe(session)} failed at {fmt_t(msg.t)}: {why}"
        self._close_session(session)
        msg.annotate("ota-failed", "error", f"the {self._describe(session)} failed: {why}")


# ---------------------------------------------------------------------- JSON (DESIGN 4.4)


def message_json(m: Message) -> dict[str, Any]:
    return {
        "id": m.id,
        "t": m.t,
        "conn": m.conn,
        "transport": m.transport,
        "from": m.side,
        "kind": m.kind,
        "callback": m.callback if m.kind != "invalid" else None,
        "name": m.name,
        "packetID": m.packet_id,
        "sn": m.sn,
        "puback": m.puback,
        "args": m.args,
        "annotations": [
            {"code": a.code, "severity": a.severity, "text": a.text} for a in m.annotations
        ],
    }


def link_json(link: Link) -> dict[str, Any]:
    return {"from": link.src, "to": link.dst, "relation": link.relation, "reason": link.reason}


def session_json(s: OtaSession) -> dict[str, Any]:
    return {
        "request": s.request,
        "target": s.target,
        "method": s.method,
        "outcome": s.outcome,
        "messages": list(s.messages),
        "progress": [[t, dt, pct] for t, dt, pct in s.progress],
        "fw_before": s.fw_before,
        "fw_expected": s.fw_expected,
        "fw_after": s.fw_after,
        "verified": s.verified,
        "reason": s.reason,
    }


def analyze(
    events: Iterable[Event],
    *,
    stall_window: float = DEFAULT_STALL_WINDOW,
    reply_timeout: float = DEFAULT_REPLY_TIMEOUT,
) -> Analysis:
    """Analyse a finished capture."""
    analysis = Analysis(stall_window=stall_window, reply_timeout=reply_timeout)
    analysis.feed_all(events)
    analysis.finish()
    return analysis
