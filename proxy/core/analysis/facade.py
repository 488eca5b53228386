"""The analysis: request/response links, OTA sessions and their annotations.

Everything is a deterministic function of the event stream: ``feed`` the events one
at a time (live) or all at once (a file) and the result is the same. ``advance(now)``
lets wall-clock time pass in a live session (stall and reply timeouts); ``finish()``
closes a capture (pending requests become unanswered, open updates stalled or
in-progress).

:class:`Analysis` is a facade: it frames and decodes, keeps the messages, rows and
links, and hands each message to the part its kind concerns (``replies``: reply
matching; ``ota``: OTA sessions, which use ``firmware`` and ``copies``). The per-message
path calls those parts directly, with no layer of its own in between.
"""

from __future__ import annotations

import math
import weakref
from array import array
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from proxy.core import protocol
from proxy.core.analysis import appview, schema
from proxy.core.analysis.common import (
    DEFAULT_REPLY_TIMEOUT,
    DEFAULT_STALL_WINDOW,
    Counts,
    gc_paused,
)
from proxy.core.analysis.copies import PushCopies
from proxy.core.analysis.firmware import FW_CALLBACKS, Devices
from proxy.core.analysis.ota import OTA_PUSHES, OtaTracker
from proxy.core.analysis.replies import Pending, Replies
from proxy.core.events import Close, Data, Event, Open, Transport
from proxy.core.framing import Frame, Framer
from proxy.core.model import (
    Connection,
    Link,
    Message,
    OtaSession,
    Relation,
    RowList,
    Severity,
)
from proxy.core.protocol import decode

_NO_LINK = array("i", [-1])
# outlet callbacks the OTA tracking reads beyond request/reply matching
_OUTLET_SPECIAL = FW_CALLBACKS | OTA_PUSHES


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
        watch_app: bool = False,
    ) -> None:
        """``watch_app``: follow the app's view from the first row, not from the first
        intervention (for a live run with rules whose printed rows are forgotten: the
        view must see the rows before any rule acted)."""
        self.stall_window = stall_window
        self.reply_timeout = reply_timeout
        self.messages: list[Message] = []
        self.links: list[Link] = []
        self.connections: dict[str, Connection] = {}
        self.rows = RowList(self.messages)
        self.generation = 0
        self.first_t: float | None = None
        self.last_t: float | None = None
        self.finished = False
        # data events that carried an intervention: the app's view is only computed when
        # there is one (see app_view)
        self.intervened = 0
        self.watch_app = watch_app
        self._app_view: appview.AppView | None = None
        self._framer = Framer()
        # link index: the first link of each message (-1, or past the end: none);
        # further ones in _more_links
        self._first_link = array("i")
        self._more_links: dict[int, list[int]] = {}
        self._strings: dict[str, str] = {}
        # nothing can time out before this (see _tick); saves a check per event
        self._deadline = math.inf
        # (message id, annotation index) of annotations made after the message was
        # added (a timeout, a restart, a stall), for views that print as they go
        self.late_annotations: list[tuple[int, int]] = []
        # The parts refer back to the analysis only weakly: in a reference cycle, a
        # dropped analysis (millions of objects) would wait for the cyclic GC to go.
        me = weakref.proxy(self)

        def unanswered(pending: Pending, why: str, close: Close | None) -> None:
            me._unanswered(pending, why, close)

        self.devices = Devices(self.connections)
        self.copies = PushCopies(stall_window)
        self.ota = OtaTracker(me, self.devices, self.copies)
        self.replies = Replies(reply_timeout, unanswered=unanswered)
        self.sessions: list[OtaSession] = self.ota.sessions

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
            if event.intervention is not None:
                self._feed_intervened(event)
                return
            frames = self._framer.feed(event)
            if frames:
                self._add_frames(frames, event.conn)
        elif isinstance(event, Open):
            self.connections[event.conn] = Connection(
                event.conn, event.transport, event.app, event.outlet, t
            )
            self._framer.feed(event)
            self.rows.add_connection(t, "open", event.conn)
            self.devices.of(event.conn).open_conns.add(event.conn)
        elif isinstance(event, Close):
            # Leftover bytes become invalid frames before the close row.
            frames = self._framer.feed(event)
            if frames:
                self._add_frames(frames, event.conn)
            self._on_close(event)
            self.rows.add_connection(t, "close", event.conn)

    def _feed_intervened(self, event: Data) -> None:
        """A data event the proxy changed, held, dropped or made: the messages decode
        what the sender said (``original`` when there is one) and keep the mark and what
        was forwarded instead (DESIGN 4.1)."""
        mark, forwarded = event.intervention, None
        if event.original is not None:
            forwarded = event.data
            event = replace(event, data=event.original)
        self.intervened += 1
        messages = self.messages
        first = len(messages)
        frames = self._framer.feed(event)
        if frames:
            self._add_frames(frames, event.conn)
        data = event.data
        for offset, frame in enumerate(frames):
            # The event may also complete an earlier event's frame (garbage ends at the
            # next '{'): only the frames made of this event's bytes carry its mark.
            if frame.raw not in data:
                continue
            msg = messages[first + offset]  # by index: a bounded window cannot be sliced
            msg.intervention = mark
            if forwarded is not None:
                msg.forwarded = forwarded

    def _add_frames(self, frames: list[Frame], conn: str) -> None:
        """Decode, record and correlate the frames one event completed: the hot path
        of a million-message capture, hence written out in one loop that calls the
        part a message concerns directly."""
        info = self.connections.get(conn)
        transport: Transport = "tcp"
        if info is not None:
            # One string object per connection and per serial, not one per message.
            conn, transport = info.conn, info.transport
        messages = self.messages
        strings = self._strings
        add_row = self.rows.add_message
        replies = self.replies
        pending = replies.pending
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
                due = replies.add(msg)
                if due < self._deadline:
                    self._deadline = due
                if msg.callback == 21:
                    self.ota.on_request(msg)
            else:
                answered = replies.match(msg) if pending else None
                if answered is None:
                    pass
                elif answered.callback == 21:
                    self.ota.on_ack(answered, msg)
                else:
                    delay = (msg.t - answered.t) * 1000
                    self._link(
                        answered.id,
                        msg_id,
                        "response",
                        f"same connection {conn} and packetID {msg.packet_id}; "
                        f"answered in {delay:.1f} ms",
                    )
                if msg.callback in _OUTLET_SPECIAL:
                    self.ota.on_special(msg, answered)

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
        end = self.last_t if self.last_t is not None else 0.0
        frames = self._framer.finish(end)
        for conn in dict.fromkeys(f.conn for f in frames):  # in the framer's order
            self._add_frames([f for f in frames if f.conn == conn], conn)
        self.replies.drain()
        self.ota.finish(self.last_t if self.last_t is not None else 0.0)
        self.generation += 1
        self.app_view()  # a finished analysis' sessions carry app_outcome without asking

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
        return self.ota.session_by_msg.get(msg_id)

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

    def empty_like(self) -> Analysis:
        """A new, empty analysis with these settings (the app's view of this one)."""
        return Analysis(stall_window=self.stall_window, reply_timeout=self.reply_timeout)

    def app_view(self) -> appview.AppView | None:
        """What the app saw, when an intervention made it differ (None otherwise); sets
        each touched session's ``app_outcome`` and ``app_reason``. Caught up (with the rows
        added since) only when the analysis changed since the last call."""
        if not self.intervened and not self.watch_app:
            return None
        seen = self._app_view
        if seen is None:
            seen = self._app_view = appview.new(self)
        if seen.generation != self.generation:
            appview.catch_up(self, seen)
            appview.apply(self, seen)
        return seen

    def to_json(self) -> dict[str, Any]:
        """The ``analyze --json`` document (DESIGN 4.4)."""
        self.app_view()
        return schema.document(self.messages, self.links, self.sessions)

    # ------------------------------------------------------------------ time

    def _tick(self, now: float) -> None:
        """Expire replies and stall updates whose deadline is before ``now``."""
        expired, deadline = self.replies.expire(now)
        self.generation += expired
        self._deadline = min(deadline, self.ota.tick(now))

    # ------------------------------------------------------------------ for the parts

    def _annotate_late(self, msg_id: int, code: str, severity: Severity, text: str) -> None:
        msg = self.messages[msg_id]
        msg.annotate(code, severity, text)
        self.late_annotations.append((msg_id, len(msg.annotations) - 1))

    def _unanswered(self, pending: Pending, why: str, close: Close | None = None) -> None:
        msg = pending.request
        if msg.callback == 21:
            self.ota.reaction.no_ack(msg, why, close)
            return
        if protocol.is_fire_and_forget(msg.callback):
            return
        self._annotate_late(msg.id, "unanswered-request", "warning", f"no reply: {why}")

    def _on_close(self, event: Close) -> None:
        info = self.connections.get(event.conn)
        if info is not None:
            info.closed = event.t
            info.closed_by = event.by
            info.error = event.error
        self.replies.close(event)
        self.ota.on_close(event)

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
