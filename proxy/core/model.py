"""What the analysis says about the wire: messages, annotations, links, OTA sessions.

These are derived data (DESIGN 3): recomputed from the events whenever a capture is
opened, so they can change shape without breaking old captures. The JSON form of
``analyze --json`` (DESIGN 4.4) is produced from them in ``proxy.core.analysis.schema``.

Annotations, links and rows are never changed once made, but they are not ``frozen``
dataclasses: frozen construction costs four times as much, and a large capture makes
hundreds of thousands. ``unsafe_hash`` keeps them hashable as frozen ones are.
"""

from __future__ import annotations

import json
from array import array
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal, Protocol, cast, overload

from proxy.core.events import CLOSERS, Close, Closer, Intervention, Open, Side, Transport

Kind = Literal["request", "response", "push", "invalid"]
Severity = Literal["info", "warning", "error"]
Relation = Literal["response", "ota-ack", "ota-sync", "ota-progress", "ota-result", "ota-verify"]
Target = Literal["outlet", "deco"]
Method = Literal["wifi", "via-outlet"]
Outcome = Literal["succeeded", "failed", "refused", "stalled", "in-progress"]


@dataclass(slots=True, unsafe_hash=True)
class Annotation:
    """A remark on one message: a stable ``code``, how bad it is, and a sentence."""

    code: str
    severity: Severity
    text: str


class _Lazy:
    """Marks arguments left in ``raw`` until someone asks for them."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "LAZY"


LAZY: Final = _Lazy()


def args_from_raw(raw: bytes) -> Any:
    """``payload.callbackArgs`` of a frame's bytes (None when absent or unreadable)."""
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    payload = value.get("payload") if type(value) is dict else None
    return payload.get("callbackArgs") if type(payload) is dict else None


class _Rare[T]:
    """An attribute read as None until it is set, kept in the slot ``slot``.

    For marks few messages carry: the slot stays unset, so decoding a message costs
    nothing more for them.
    """

    __slots__ = ("slot",)

    def __init__(self, slot: str) -> None:
        self.slot = slot

    def __get__(self, obj: object, owner: type | None = None) -> T | None:
        return getattr(obj, self.slot, None)

    def __set__(self, obj: object, value: T | None) -> None:
        setattr(obj, self.slot, value)


class Message:
    """One decoded frame.

    ``kind`` is provisional when decoded (app frames are requests, outlet frames
    pushes) and settled by the analysis, which turns a push into a ``response`` when
    it answers a request on the same connection. ``args`` is ``callbackArgs`` exactly
    as sent (None when absent); ``raw`` is the frame's bytes.

    A capture holds millions of messages, most of them sensor pushes whose arguments
    nobody looks at until they are shown, so the decoder may store ``LAZY`` instead
    and ``args`` parses them from ``raw`` on demand (not cached: showing a few rows
    must not grow the heap back).
    """

    __slots__ = (
        "_args",
        "_forwarded",
        "_intervention",
        "annotations",
        "callback",
        "conn",
        "id",
        "injected",
        "kind",
        "name",
        "packet_id",
        "puback",
        "raw",
        "side",
        "sn",
        "t",
        "transport",
    )

    def __init__(
        self,
        id: int,
        t: float,
        conn: str,
        transport: Transport,
        side: Side,
        kind: Kind,
        callback: int | None,
        name: str,
        packet_id: Any,
        sn: Any,
        puback: Any,
        args: Any,
        raw: bytes,
        annotations: list[Annotation] | None = None,
        injected: bool = False,
    ) -> None:
        self.id = id
        self.t = t
        self.conn = conn
        self.transport: Transport = transport
        self.side: Side = side
        self.kind: Kind = kind
        self.callback = callback
        self.name = name
        self.packet_id = packet_id
        self.sn = sn
        self.puback = puback
        self._args = args
        self.raw = raw
        self.annotations: list[Annotation] = [] if annotations is None else annotations
        self.injected = injected

    @property
    def args(self) -> Any:
        args = self._args
        return args_from_raw(self.raw) if args is LAZY else args

    @args.setter
    def args(self, value: Any) -> None:
        self._args = value

    # What the proxy did to the message (DESIGN 4.1), and the bytes that reached the
    # other side when they differ from ``raw`` (set, edit).
    intervention: _Rare[Intervention] = _Rare("_intervention")
    forwarded: _Rare[bytes] = _Rare("_forwarded")

    def annotate(self, code: str, severity: Severity, text: str) -> None:
        self.annotations.append(Annotation(code, severity, text))

    def has(self, code: str) -> bool:
        return any(a.code == code for a in self.annotations)

    def __repr__(self) -> str:
        return (
            f"Message(id={self.id}, t={self.t}, conn={self.conn!r}, side={self.side!r}, "
            f"kind={self.kind!r}, callback={self.callback}, packet_id={self.packet_id!r}, "
            f"annotations={[a.code for a in self.annotations]})"
        )


_DONE: Final = {
    "drop": "dropped",
    "delay": "delayed",
    "close": "connection closed instead of forwarding it",
    "reply": "answered by the proxy",
    "set": "changed",
    "edit": "edited",
    "hold": "held",
    "inject": "injected",
}


def intervention_text(msg: Message) -> str:
    """What the proxy did to ``msg`` and why, for people ("dropped by rule 3: cb:22
    arg.1:40-100 -> drop"); empty for a message forwarded as received."""
    mark = msg.intervention
    if mark is None:
        return ""
    head = intervention_head(mark)
    return head if mark.held is None else f"{head} (held {mark.held:.3f} s)"


def intervention_head(mark: Intervention) -> str:
    """The intervention without how long the message waited (to group alike ones)."""
    head = mark.why or f"{_DONE.get(mark.action, mark.action)} by the {mark.by}"
    if mark.rule and mark.rule not in head:
        head += f": {mark.rule}"
    return head


@dataclass(slots=True, unsafe_hash=True)
class Link:
    """From an earlier message to a later one, with why they belong together."""

    src: int
    dst: int
    relation: Relation
    reason: str


@dataclass(slots=True, eq=False)
class OtaSession:
    """One firmware update and every message it caused."""

    target: Target
    request: int | None = None
    method: Method | None = None
    outcome: Outcome = "in-progress"
    messages: list[int] = field(default_factory=list)
    # (t, device_type, percent)
    progress: list[tuple[float, int, int]] = field(default_factory=list)
    fw_before: str | None = None
    fw_expected: str | None = None
    fw_after: str | None = None
    verified: bool | None = None
    reason: str = ""
    # What the app saw, when an intervention touched the update (DESIGN 4.4 end): set
    # by the analysis from its app view (proxy.core.analysis.appview), None otherwise.
    app_outcome: Outcome | None = None
    app_reason: str | None = None
    # Bookkeeping the correlator needs; not part of the public JSON.
    started: float = 0.0
    last_activity: float = 0.0
    ended: float | None = None
    phase: str = "requested"
    restarts: int = 0
    rebooted_after_result: bool = False
    # when the outlet first dropped its connections after the result (its reboot)
    reboot_t: float | None = None
    # the updated module was seen down (deco: PM missing or blank in cb12)
    module_down_seen: bool = False
    # when the requesting app was seen giving up on the update (analysis: app-gave-up)
    app_gave_up: float | None = None
    # the last message of this update on each connection (where a restart is noted)
    last_by_conn: dict[str, int] = field(default_factory=dict)
    sn: Any = None
    outlet_addr: str | None = None


@dataclass(slots=True)
class Connection:
    """A connection's lifetime as the analysis knows it."""

    conn: str
    transport: Transport
    app: str
    outlet: str
    opened: float
    closed: float | None = None
    closed_by: str | None = None
    error: str | None = None

    def open_event(self, t: float) -> Open:
        """The event that opened it, at ``t`` (views rebuilding a capture's events)."""
        return Open(t, self.conn, self.transport, self.app, self.outlet)

    def close_event(self, t: float) -> Close:
        """The event that closed it, at ``t``, with who closed it and why."""
        by = self.closed_by if self.closed_by in CLOSERS else None
        return Close(t, self.conn, cast(Closer | None, by), self.error)


RowKind = Literal["open", "close", "message"]


@dataclass(slots=True, unsafe_hash=True)
class Row:
    """One line of the timeline: a message, or a connection opening or closing.

    ``ref`` is the message id for message rows and -1 otherwise.
    """

    t: float
    kind: RowKind
    conn: str
    ref: int


class _Refs[R](Protocol):
    """What a row store keeps its references in (an ``array``, a forgetting ``Tail``)."""

    def __len__(self) -> int: ...

    @overload
    def __getitem__(self, index: int) -> R: ...

    @overload
    def __getitem__(self, index: slice) -> Iterable[R]: ...

    def __iter__(self) -> Iterator[R]: ...


class RefRows[R](Sequence[Row]):
    """Rows kept as compact references, each made into a :class:`Row` only when read.

    The stores differ in what a reference is and how it is kept (``_refs``, ``_row``);
    reading them as a list of rows is this, once.
    """

    __slots__ = ()
    _refs: _Refs[R]

    def _row(self, ref: R) -> Row:
        raise NotImplementedError

    def __len__(self) -> int:
        return len(self._refs)

    def first_held(self) -> int:
        """The index of the oldest row still held (a bounded analysis forgets rows)."""
        return 0

    @overload
    def __getitem__(self, index: int) -> Row: ...

    @overload
    def __getitem__(self, index: slice) -> list[Row]: ...

    def __getitem__(self, index: int | slice) -> Row | list[Row]:
        if isinstance(index, slice):
            return [self._row(r) for r in self._refs[index]]
        return self._row(self._refs[index])

    def __iter__(self) -> Iterator[Row]:
        return (self._row(r) for r in self._refs)


class RowList(RefRows[int]):
    """The timeline's rows in 8 bytes each: message rows are just message ids.

    Reads as a list of :class:`Row`; a message's Row is only made when asked for.
    Connection rows (few) are kept as they are.
    """

    def __init__(self, messages: Sequence[Message]) -> None:
        self._messages = messages
        # >= 0: a message id; < 0: -(index + 1) into _conn_rows
        self._refs: array[int] = array("q")
        self._conn_rows: list[Row] = []

    def add_message(self, msg_id: int) -> None:
        self._refs.append(msg_id)

    def add_connection(self, t: float, kind: RowKind, conn: str) -> None:
        self._conn_rows.append(Row(t, kind, conn, -1))
        self._refs.append(-len(self._conn_rows))

    def _row(self, ref: int) -> Row:
        if ref >= 0:
            msg = self._messages[ref]
            return Row(msg.t, "message", msg.conn, ref)
        return self._conn_rows[-ref - 1]
