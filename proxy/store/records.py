"""The event record shared by traces (DESIGN 4.1) and captures (4.2).

Both formats store the same fields per event and differ only in how a data payload is
spelt (``text``/``b64`` in JSON, a msgpack ``bin`` in a capture), so the checks that turn
an untrusted record into an :class:`~proxy.core.events.Event` live here, once.
"""

from __future__ import annotations

import math
import os
import stat
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import IO, Any, BinaryIO, Final, Literal, Self

from proxy.core.errors import UserError
from proxy.core.events import CLOSERS, SIDES, T_MAX, TRANSPORTS, Close, Data, Event, Open, time_ok
from proxy.store.intervention import decode_intervention, decode_original

EVENT_TYPES: Final = ("open", "data", "close")

SourceKind = Literal["capture", "trace"]


class ClosedOnExit:
    """``with`` closes it: the context manager of the store's readers and writers, once."""

    __slots__ = ()

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class EventWriter[S: (bytes, str)](ClosedOnExit):
    """What the capture and trace writers share: the file, the count, closing once.

    A writer that opened its file (``owned``) closes it; one handed an open stream
    (stdout) only flushes it, as the stream is the caller's.
    """

    def __init__(self, fp: IO[S], *, owned: bool = True) -> None:
        self._fp: IO[S] = fp
        self._owned = owned
        self.count = 0
        self.closed = False

    def flush(self) -> None:
        self._fp.flush()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self._owned:
            self._fp.close()
        else:
            self._fp.flush()


class SourceError(UserError):
    """A capture or trace that cannot be opened at all (missing, empty, wrong kind, too new)."""


class RecordError(ValueError):
    """One record is unusable; the reader reports it and carries on with the next."""


@dataclass(frozen=True, slots=True)
class Problem:
    """Something wrong in a file that did not stop the reading.

    ``where`` locates it for a human ("line 12", "record 40 at byte 5123"); it is empty
    for problems about the file as a whole (such as a cut at the end).
    """

    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}" if self.where else self.message


@dataclass(slots=True)
class Loaded(ClosedOnExit):
    """An opened capture or trace: its metadata, its events, and what was wrong with it.

    ``events`` is a one-shot iterator that streams from the file; ``problems`` fills in
    as it is consumed, so read it after the events are exhausted. ``close()`` releases
    the file early when the caller stops iterating before the end.
    """

    kind: SourceKind
    meta: dict[str, Any]
    events: Iterator[Event]
    problems: list[Problem] = field(default_factory=list)
    on_close: Callable[[], object] | None = None

    def close(self) -> None:
        close = getattr(self.events, "close", None)
        if close is not None:
            close()
        if self.on_close is not None:
            self.on_close()


Payload = Callable[[Mapping[str, Any]], tuple[bytes, bool]]
"""Extracts ``(bytes, text flag)`` from a data record; raises RecordError."""


def _str(rec: Mapping[str, Any], key: str) -> str:
    value = rec.get(key)
    if not isinstance(value, str):
        raise RecordError(_field_problem(rec, key, "a string"))
    if not _utf8(value):
        # a trace can spell one ("\ud800"); no capture can hold it, no wire carried it
        raise RecordError(f"field {key!r} holds an unpaired surrogate, not UTF-8")
    return value


def _field_problem(rec: Mapping[str, Any], key: str, wanted: str) -> str:
    if key not in rec:
        return f"missing field {key!r}"
    return f"field {key!r} should be {wanted}, not {_short(rec[key])}"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _choice(rec: Mapping[str, Any], key: str, allowed: tuple[str, ...]) -> str:
    value = rec.get(key)
    if value not in allowed:
        raise RecordError(_field_problem(rec, key, " or ".join(map(repr, allowed))))
    assert isinstance(value, str)
    return value


def _time(rec: Mapping[str, Any]) -> float:
    value = rec.get("t")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RecordError(_field_problem(rec, "t", "a number of seconds"))
    try:
        t = float(value)
    except OverflowError:
        raise RecordError(f"field 't' is out of range: {_short(value)}") from None
    if not math.isfinite(t):
        raise RecordError(f"field 't' should be a finite number, not {_short(value)}")
    if not time_ok(t):
        raise RecordError(
            f"field 't' is out of range: {_short(value)} (a time is seconds from 0 "
            f"up to {T_MAX:.0f}, the year 3000)"
        )
    return t


def event_from_record(rec: object, payload: Payload) -> Event:
    """Build an event from one decoded record, or raise RecordError saying what is wrong.

    Unknown keys are ignored (4.1), so newer writers can add fields.
    """
    # Fast path for the well-formed data record, nearly every record of a capture; the
    # general path below does the same checks one by one to say what is wrong.
    if type(rec) is dict and rec.get("event") == "data":
        t, conn, side = rec.get("t"), rec.get("conn"), rec.get("from")
        injected = rec.get("injected", False)
        if (
            type(t) is float
            and 0.0 <= t < T_MAX
            and type(conn) is str
            and conn.isascii()
            and (side == "app" or side == "outlet")
            and type(injected) is bool
            and "intervention" not in rec
        ):
            data, text = payload(rec)
            return Data(t, conn, side, data, text, injected)
    return _event_from_record(rec, payload)


def _event_from_record(rec: object, payload: Payload) -> Event:
    if not isinstance(rec, dict):
        raise RecordError(f"expected an event object, got {_short(rec)}")
    kind = rec.get("event")
    if kind not in EVENT_TYPES:
        if "event" not in rec:
            raise RecordError("missing field 'event'")
        raise RecordError(f"unknown event type {_short(kind)}")
    t = _time(rec)
    conn = _str(rec, "conn")
    if kind == "data":
        side = _choice(rec, "from", SIDES)
        data, text = payload(rec)
        injected = rec.get("injected", False)
        if not isinstance(injected, bool):
            raise RecordError(_field_problem(rec, "injected", "true or false"))
        mark = rec.get("intervention")
        if mark is None:
            return Data(t, conn, side, data, text, injected)  # type: ignore[arg-type]
        try:
            intervention, original = decode_intervention(mark), decode_original(rec)
        except ValueError as exc:
            raise RecordError(str(exc)) from None
        return Data(t, conn, side, data, text, injected, intervention, original)  # type: ignore[arg-type]
    if kind == "open":
        transport = _choice(rec, "transport", TRANSPORTS)
        return Open(t, conn, transport, _str(rec, "app"), _str(rec, "outlet"))  # type: ignore[arg-type]
    by = rec.get("by")
    if by is not None and by not in CLOSERS:
        raise RecordError(_field_problem(rec, "by", "'app', 'outlet', 'proxy' or null"))
    error = rec.get("error")
    if error is not None:
        _str(rec, "error")
    return Close(t, conn, by, error)


def record_from_event(event: Event) -> dict[str, Any]:
    """The fields of ``event`` common to both formats.

    A data record lacks its payload and its ``injected`` mark: each format appends them,
    so that the payload reads before the mark.
    """
    if isinstance(event, Data):
        rec: dict[str, Any] = {"t": event.t, "conn": event.conn, "event": "data"}
        rec["from"] = event.side
        return rec
    if isinstance(event, Open):
        return {
            "t": event.t,
            "conn": event.conn,
            "event": "open",
            "transport": event.transport,
            "app": event.app,
            "outlet": event.outlet,
        }
    rec = {"t": event.t, "conn": event.conn, "event": "close", "by": event.by}
    if event.error is not None:
        rec["error"] = event.error
    return rec


class OrderCheck:
    """Reports (but keeps) events whose ``t`` goes backwards; 4.1 wants it non-decreasing."""

    __slots__ = ("last",)

    def __init__(self) -> None:
        self.last = -math.inf

    def check(self, t: float) -> str | None:
        previous, self.last = self.last, t
        return went_backwards(t, previous) if t < previous else None


class EventChecker:
    """Turns a reader's records into events one by one, noting each problem in ``problems``.

    One place for what both formats do with a decoded record: a bad one is reported and
    skipped (``skipped`` says how, e.g. "line skipped"), one whose time goes backwards is
    reported and kept.
    """

    __slots__ = ("_order", "_payload", "problems", "skipped")

    def __init__(self, payload: Payload, problems: list[Problem], skipped: str = "skipped"):
        self._payload = payload
        self._order = OrderCheck()
        self.problems = problems
        self.skipped = skipped

    def event(self, obj: object, where: str) -> Event | None:
        """The event of record ``obj`` (found at ``where``), or None when it is skipped."""
        try:
            event = event_from_record(obj, self._payload)
        except RecordError as exc:
            self.problems.append(Problem(where, f"{exc}; {self.skipped}"))
            return None
        backwards = self._order.check(event.t)
        if backwards is not None:
            self.problems.append(Problem(where, backwards))
        return event


def went_backwards(t: float, previous: float) -> str:
    return f"time goes backwards ({t!r} after {previous!r}); event kept"


def open_source(path: str | os.PathLike[str], what: str) -> BinaryIO:
    """Open ``path`` for reading, turning the usual OS failures into one clear sentence.

    ``what`` names the expected kind of file ("capture or trace") for the messages.
    """
    name = os.fspath(path)
    try:
        mode = os.stat(name).st_mode
        if stat.S_ISDIR(mode):
            raise SourceError(f"{name} is a directory, not a {what}")
        if not stat.S_ISREG(mode):
            raise SourceError(f"{name} is not a regular file, so not a {what}")
        return open(name, "rb")
    except FileNotFoundError:
        raise SourceError(f"{name}: no such file") from None
    except PermissionError:
        raise SourceError(f"{name}: permission denied (cannot read it)") from None
    except OSError as exc:
        raise SourceError(f"{name}: cannot open it ({exc.strerror or exc})") from None


def _utf8(text: str) -> bool:
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
