"""Bounded memory for a long-running headless proxy.

``run --headless`` prints each timeline row once and never looks at it again; the
capture on disk is the permanent record. A :class:`BoundedAnalysis` therefore forgets
what its printer has shown and what can no longer change: only what is still "open"
stays (requests waiting for their reply, OTA updates still running, recent OTA pushes
that a copy may match), so memory is bounded by what is open, not by history.

What a forgotten message leaves behind is counted, not kept: the summary still
reports every message, link, connection, invalid frame and OTA update. It lists the
latest ``keep_sessions`` finished updates (and every one that can still change); the
older ones are counted only.

The TUI and ``analyze`` keep the full history in a plain :class:`~proxy.core.analysis.Analysis`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any, overload

from proxy.core.analysis import COPY_WINDOW, FINAL_OUTCOMES, Analysis, Counts, appview
from proxy.core.model import Link, Message, OtaSession, RefRows, Row, RowKind

# Forget at most this often (in new messages), so that the cost of working out what is
# still open is spread over many messages; a burst of large frames forgets sooner.
COMPACT_EVERY = 1024
COMPACT_BYTES = 1 << 20
# finished OTA updates the summary still lists (each ~2 KB with its message ids)
KEEP_SESSIONS = 100


class ForgottenError(LookupError):
    """A message, row or annotation the bounded analysis has already let go of."""


class Tail[T]:
    """A list indexed from 0 that can forget its oldest items; ``len`` counts them all."""

    __slots__ = ("_base", "_items")

    def __init__(self) -> None:
        self._base = 0
        self._items: list[T] = []

    @property
    def base(self) -> int:
        """The index of the oldest item still held."""
        return self._base

    def append(self, item: T) -> None:
        self._items.append(item)

    def __len__(self) -> int:
        return self._base + len(self._items)

    @overload
    def __getitem__(self, index: int) -> T: ...

    @overload
    def __getitem__(self, index: slice) -> list[T]: ...

    def __getitem__(self, index: int | slice) -> T | list[T]:
        base = self._base
        if isinstance(index, slice):
            start, stop, step = index.indices(len(self))
            if step != 1 or (start < base and start < stop):
                raise ForgottenError(f"items below {base} are forgotten")
            return self._items[start - base : stop - base]
        i = index + len(self) if index < 0 else index
        if i < base:
            raise ForgottenError(f"item {index} is forgotten (items below {base} are)")
        return self._items[i - base]

    def __iter__(self) -> Iterator[T]:
        return iter(self._items)

    def forget_before(self, index: int) -> list[T]:
        """Drop the items below ``index``; returns them."""
        k = min(index, len(self)) - self._base
        if k <= 0:
            return []
        gone = self._items[:k]
        del self._items[:k]
        self._base += k
        return gone


class MessageWindow:
    """``Analysis.messages`` with history forgotten: ``window[i].id == i`` for every
    message still held (the recent ones, and older ones something still refers to);
    ``len`` counts every message ever added, so new ids stay consecutive."""

    __slots__ = ("_kept", "_recent", "raw_bytes")

    def __init__(self) -> None:
        self._recent: Tail[Message] = Tail()
        self._kept: dict[int, Message] = {}
        # bytes of the raw frames held (an upper bound until the next compaction)
        self.raw_bytes = 0

    def append(self, msg: Message) -> None:
        self._recent._items.append(msg)  # once per message: no call through Tail
        self.raw_bytes += len(msg.raw)

    def __len__(self) -> int:
        recent = self._recent
        return recent._base + len(recent._items)

    def __getitem__(self, index: int) -> Message:
        if index >= self._recent.base or index < 0:
            return self._recent[index]
        msg = self._kept.get(index)
        if msg is None:
            raise ForgottenError(f"message {index} is forgotten")
        return msg

    def __contains__(self, index: object) -> bool:
        return isinstance(index, int) and (
            self._recent.base <= index < len(self._recent) or index in self._kept
        )

    def __iter__(self) -> Iterator[Message]:
        """The messages still held, in id order."""
        for i in sorted(self._kept):
            yield self._kept[i]
        yield from self._recent

    def first_at_or_after(self, t: float) -> int:
        """The id of the first recent message at ``t`` or later (ids are in time order)."""
        items, base = self._recent._items, self._recent._base
        lo, hi = 0, len(items)
        while lo < hi:
            mid = (lo + hi) // 2
            if items[mid].t < t:
                lo = mid + 1
            else:
                hi = mid
        return base + lo

    def held(self) -> int:
        return len(self._kept) + len(self._recent) - self._recent.base

    def forget_before(self, index: int, keep: set[int]) -> list[Message]:
        """Forget the messages below ``index`` except those in ``keep``; returns them."""
        kept = {i: m for i, m in self._kept.items() if i in keep}
        gone = [m for i, m in self._kept.items() if i not in keep]
        for msg in self._recent.forget_before(index):
            if msg.id in keep:
                kept[msg.id] = msg
            else:
                gone.append(msg)
        self._kept = kept
        self.raw_bytes = sum(len(m.raw) for m in self)
        return gone


class RowWindow(RefRows[int | Row]):
    """``Analysis.rows`` (a :class:`~proxy.core.model.RowList`) that forgets printed rows."""

    __slots__ = ("_messages", "_refs")

    def __init__(self, messages: MessageWindow) -> None:
        self._messages = messages
        # a message id, or the connection row itself (few)
        self._refs: Tail[int | Row] = Tail()

    def add_message(self, msg_id: int) -> None:
        self._refs._items.append(msg_id)

    def add_connection(self, t: float, kind: RowKind, conn: str) -> None:
        self._refs.append(Row(t, kind, conn, -1))

    def _row(self, ref: int | Row) -> Row:
        if isinstance(ref, Row):
            return ref
        msg = self._messages[ref]
        return Row(msg.t, "message", msg.conn, ref)

    def first_held(self) -> int:
        return self._refs.base

    def forget_before(self, index: int) -> list[Row]:
        """Drop the rows below ``index``; returns the connection rows among them."""
        return [r for r in self._refs.forget_before(index) if isinstance(r, Row)]


class BoundedAnalysis(Analysis):
    """An :class:`Analysis` for a view that shows each row once, then forgets it.

    Identical results (the same rows, links, annotations and sessions as they are
    made), but a printer calls :meth:`forget_printed` with how far it got and
    everything shown that nothing open refers to is dropped: the message (its raw
    bytes and arguments), its row, its links and, once its close is shown, a closed
    connection. Reading a forgotten message raises :class:`ForgottenError`.

    Kept: every message inside the analysis' longest look back (``lookback``: the
    stall window, 60 s by default), so a rule may look
    back that far; older ones only while something refers to them: requests still
    waiting for a reply, the messages of every OTA update that
    can still change or be read (open, not yet settled, with activity within two stall
    windows, or the newest of its outlet and target), the OTA pushes a copy may still
    match, and the connections those messages were on.
    """

    def __init__(
        self,
        *,
        compact_every: int = COMPACT_EVERY,
        keep_sessions: int = KEEP_SESSIONS,
        **options: Any,
    ) -> None:
        super().__init__(**options)
        # How far back in time the analysis' rules may read messages nothing pins (a
        # refusal's app is watched for a stall window, a copy matched within its
        # window); requests waiting for a reply are pinned instead.
        self.lookback = max(self.stall_window, COPY_WINDOW)
        self.compact_every = compact_every
        self.keep_sessions = keep_sessions
        # the same attributes, as windows (typed here: Analysis declares them as lists)
        self._window = MessageWindow()
        self._row_window = RowWindow(self._window)
        self._link_tail: Tail[Link] = Tail()
        self._late_tail: Tail[tuple[int, int]] = Tail()
        self.messages = self._window  # type: ignore[assignment]
        self.rows = self._row_window  # type: ignore[assignment]
        self.links = self._link_tail  # type: ignore[assignment]
        self.late_annotations = self._late_tail  # type: ignore[assignment]
        self._links_by_msg: dict[int, list[Link]] = {}
        self._forgotten_connections = 0
        self._forgotten_invalid = 0
        self._forgotten_sessions = 0
        # closed connections whose close row was shown, still held
        self._closed_shown: set[str] = set()
        # each session's number (1 for the first), by id(); kept for the sessions held
        self._session_numbers: dict[int, int] = {}
        self._compacted_at = 0  # len(messages) at the last compaction
        self._raw_at = 0  # raw bytes held right after it
        self._compacted_clock = -math.inf  # and the clock then
        self._clock = -math.inf  # the latest time advance() was given

    def empty_like(self) -> BoundedAnalysis:
        return BoundedAnalysis(
            compact_every=self.compact_every,
            keep_sessions=self.keep_sessions,
            stall_window=self.stall_window,
            reply_timeout=self.reply_timeout,
        )

    # ---------------------------------------------------------------- the same API

    def _link(self, src: int, dst: int, relation: Any, reason: str) -> None:
        link = Link(src, dst, relation, reason)
        self._link_tail.append(link)
        by_msg = self._links_by_msg
        by_msg.setdefault(src, []).append(link)
        if dst != src:
            by_msg.setdefault(dst, []).append(link)

    def links_of(self, msg_id: int) -> list[Link]:
        """Every link that starts or ends at this message while it is held."""
        return list(self._links_by_msg.get(msg_id, ()))

    def counts(self) -> Counts:
        held = super().counts()
        return Counts(
            messages=held.messages,
            connections=held.connections + self._forgotten_connections,
            links=held.links,
            invalid=held.invalid + self._forgotten_invalid,
            sessions=held.sessions + self._forgotten_sessions,
        )

    def numbered_sessions(self) -> list[tuple[int, OtaSession]]:
        self._number_sessions()
        return [(self._session_numbers[id(s)], s) for s in self.sessions]

    def _number_sessions(self) -> None:
        """Number the sessions added since the last call (they are at the end)."""
        numbers = self._session_numbers
        new = 0
        for session in reversed(self.sessions):
            if id(session) in numbers:
                break
            new += 1
        first = len(numbers) + self._forgotten_sessions + 1
        for offset, session in enumerate(self.sessions[len(self.sessions) - new :]):
            numbers[id(session)] = first + offset

    # ---------------------------------------------------------------- forgetting

    def retained_bytes(self) -> int:
        """Bytes of raw frames the analysis still holds (the rest is forgotten)."""
        return self._window.raw_bytes

    def holds(self, msg_id: int) -> bool:
        """Whether message ``msg_id`` is still in memory (not forgotten)."""
        return msg_id in self._window

    def retained_messages(self) -> int:
        """How many messages are still held in memory."""
        return self._window.held()

    def forget_printed(self, rows: int, messages: int, late: int) -> None:
        """A view has shown the first ``rows`` rows, every message below id ``messages``
        and the first ``late`` late annotations: let go of what nothing open needs.

        The work (linear in what is held) is done once the messages held have grown
        by half (at least ``compact_every``), their raw bytes have doubled (at least a
        megabyte more), or, while a megabyte or more is held, once a second of the
        clock, so it costs a constant per message on average.
        """
        window = self._window
        grown = len(window) - self._compacted_at
        raw = window.raw_bytes
        clock = max(self.last_t or 0.0, self._clock)
        if (
            grown < max(self.compact_every, window.held() // 2)
            and raw - self._raw_at < max(COMPACT_BYTES, self._raw_at)
            and (raw < COMPACT_BYTES or clock - self._compacted_clock < 1.0)
        ):
            return
        seen = self.app_view()  # the app's view (interventions only) reads the rows first
        self._compact(rows, messages, late)
        if seen is not None:
            view = seen.analysis
            assert isinstance(view, BoundedAnalysis)  # appview.new makes it of this kind
            view.forget_printed(len(view.rows), len(view.messages), len(view.late_annotations))
            appview.forget(self, seen, self._window)

    def advance(self, now: float) -> None:
        super().advance(now)
        self._clock = max(self._clock, now)  # time passes for forgetting too

    def _live_sessions(self) -> list[bool]:
        """For each session: whether it can still change or be read (open, not settled,
        active within two stall windows, or the newest of its outlet and target, which
        the next request or a closing app is compared with)."""
        open_sessions = {id(s) for s in self.ota.open.values()}
        newest = {id(s) for s in {(s.outlet_addr, s.target): s for s in self.sessions}.values()}
        recent = (self.last_t or 0.0) - 2 * self.stall_window
        return [
            id(session) in open_sessions
            or id(session) in newest
            or session.outcome not in FINAL_OUTCOMES | {"stalled"}
            or session.last_activity >= recent
            for session in self.sessions
        ]

    def _pinned(self, live: list[bool]) -> set[int]:
        """Ids of the messages the analysis may still read or annotate."""
        pinned = {p.msg_id for p in self.replies.pending.values()}
        pinned.update(seen[0] for seen in self.copies.recent.values())
        for session, is_live in zip(self.sessions, live, strict=True):
            if is_live:
                pinned.update(session.messages)
                if session.request is not None:
                    pinned.add(session.request)
                pinned.update(session.last_by_conn.values())
        return pinned

    def _drop_old_sessions(self, live: list[bool]) -> None:
        """Keep the latest ``keep_sessions`` settled sessions and every live one."""
        settled = live.count(False)
        if settled <= self.keep_sessions:
            return
        self._number_sessions()
        drop = settled - self.keep_sessions
        kept = []
        for session, is_live in zip(self.sessions, live, strict=True):
            if not is_live and drop > 0:
                drop -= 1
                del self._session_numbers[id(session)]
                self._forgotten_sessions += 1
            else:
                kept.append(session)
        self.sessions[:] = kept

    def _compact(self, rows: int, messages: int, late: int) -> None:
        window, late_tail, links = self._window, self._late_tail, self._link_tail
        row_window = self._row_window
        # A message stays while its row, or a late remark about it, is still to be shown,
        # and while it is inside the analysis' longest window (a rule may look back that
        # far: a refusal's stall window, a copy, a reply).
        clock = max(self.last_t or 0.0, self._clock)
        horizon = min(messages, window.first_at_or_after(clock - self.lookback))
        for msg_id, _ in late_tail[late:]:
            horizon = min(horizon, msg_id)
        late_tail.forget_before(late)
        for row in row_window.forget_before(rows):
            if row.kind == "close":
                self._closed_shown.add(row.conn)
        live = self._live_sessions()
        gone = window.forget_before(horizon, self._pinned(live))
        self._drop_old_sessions(live)
        # A closed connection whose close was shown goes once no message held is on it
        # (the analysis reads a held request's connection: who asked, from where).
        in_use = {m.conn for m in window}
        for conn in [c for c in self._closed_shown if c not in in_use]:
            self._closed_shown.discard(conn)
            info = self.connections.get(conn)
            if info is not None and info.closed is not None:
                del self.connections[conn]
                self._forgotten_connections += 1
        by_msg = self._links_by_msg
        by_session = self.ota.session_by_msg
        for msg in gone:
            by_msg.pop(msg.id, None)
            by_session.pop(msg.id, None)
            if msg.kind == "invalid":
                self._forgotten_invalid += 1
        i = links.base
        while i < len(links) and links[i].dst < horizon:
            i += 1
        links.forget_before(i)
        if len(self._strings) > 256:
            self._strings.clear()  # only shares equal serials between messages
        self._compacted_at = len(window)
        self._raw_at = window.raw_bytes
        self._compacted_clock = clock
