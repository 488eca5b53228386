"""Capture files (DESIGN 4.2): msgpack, written while recording, readable after a crash.

Layout: a header map ``{"invisproxy_capture": 1, "created": <unix time>, ...meta}``
followed by one map per event with the fields of 4.1 and the payload as msgpack
``bin``::

    {"t": 0.01, "conn": "c1", "event": "data", "from": "app", "data": b"...", "text": true}

msgpack needs no framing of its own, so a record is complete exactly when it decodes:
a file cut anywhere still yields every record before the cut. Nothing but maps,
strings, numbers, booleans, nil and bin is accepted: no ext types, no pickle, no code.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterable, Iterator, Mapping
from types import TracebackType
from typing import Any, BinaryIO, Final, NoReturn

import msgpack

from proxy.events import T_MAX, Data, Event, is_utf8
from proxy.records import (
    Loaded,
    OrderCheck,
    Problem,
    RecordError,
    SourceError,
    event_from_record,
    open_source,
    plain_meta,
    record_from_event,
    went_backwards,
)

CAPTURE_KEY: Final = "invisproxy_capture"
CAPTURE_VERSION: Final = 1
EXTENSION: Final = ".invcap"
DEFAULT_FOLDER: Final = "captures"

# One WebSocket message or TCP chunk is far below this; the limit only bounds what a
# corrupt length prefix can make the reader allocate.
_MAX_RECORD: Final = 1 << 30
_READ_SIZE: Final = 1 << 20
# Where a record written by CaptureWriter starts: a small map whose first key is "t"
# holding a float64. Used to find the next record after corrupt bytes.
_RECORD_START: Final = re.compile(rb"[\x80-\x8f]\xa1t\xcb", re.DOTALL)

_UNPACK_ERRORS: Final = (ValueError, TypeError, msgpack.UnpackException)


class _ExtTypeError(ValueError):
    pass


def _refuse_ext(code: int, data: bytes) -> NoReturn:
    raise _ExtTypeError(f"msgpack extension type {code} (captures hold plain data only)")


def _unpacker(fp: BinaryIO | None = None) -> msgpack.Unpacker:
    return msgpack.Unpacker(
        fp,
        read_size=_READ_SIZE,
        raw=False,
        strict_map_key=True,
        ext_hook=_refuse_ext,
        max_buffer_size=_MAX_RECORD,
    )


def capture_record(event: Event) -> dict[str, Any]:
    """The msgpack map of one event."""
    if type(event) is Data:  # the hot path: built in one go, same fields and order
        rec = {
            "t": event.t,
            "conn": event.conn,
            "event": "data",
            "from": event.side,
            "data": event.data,
            "text": event.text,
        }
        if event.injected:
            rec["injected"] = True
        return rec
    return record_from_event(event)


def _payload(rec: Mapping[str, Any]) -> tuple[bytes, bool]:
    data = rec.get("data")
    if not isinstance(data, bytes):
        if "data" not in rec:
            raise RecordError("missing field 'data'")
        raise RecordError("field 'data' should be bytes (msgpack bin)")
    text = rec.get("text")
    if text is None:
        return data, is_utf8(data)
    if not isinstance(text, bool):
        raise RecordError("field 'text' should be true or false")
    return data, text


def header(meta: Mapping[str, Any] | None = None, created: float | None = None) -> dict[str, Any]:
    """The first record of a capture; ``meta`` may override ``created`` (conversions do)."""
    meta = plain_meta(meta or {})
    head: dict[str, Any] = {CAPTURE_KEY: CAPTURE_VERSION}
    if "created" not in meta:
        head["created"] = time.time() if created is None else created
    # meta's own order is kept, so capture -> trace -> capture is byte-identical
    head.update((k, v) for k, v in meta.items() if k != CAPTURE_KEY)
    return head


class CaptureWriter:
    """Appends events to a new capture file while recording.

    With ``flush_each`` (the default, for live recording) every event is handed to the
    OS as soon as it is written, so killing the process loses nothing already written;
    ``flush_each=False`` buffers for bulk conversion. ``overwrite=False`` refuses an
    existing file. Not thread-safe: one writer per recording task.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        meta: Mapping[str, Any] | None = None,
        *,
        flush_each: bool = True,
        overwrite: bool = False,
    ) -> None:
        self.path = os.fspath(path)
        self._packer = msgpack.Packer(use_bin_type=True, strict_types=False)
        # Unbuffered: each write() is one system call, the record reaches the OS whole.
        self._fp: BinaryIO = open(  # noqa: SIM115 - closed by close()
            self.path, "wb" if overwrite else "xb", buffering=0 if flush_each else _READ_SIZE
        )
        self.count = 0
        self.closed = False
        try:
            self._emit(self._packer.pack(header(meta)))
        except BaseException:
            self._fp.close()
            raise

    def write(self, event: Event) -> None:
        self._emit(self._packer.pack(capture_record(event)))
        self.count += 1

    def write_all(self, events: Iterable[Event]) -> int:
        emit, pack = self._emit, self._packer.pack
        n = 0
        for event in events:
            emit(pack(capture_record(event)))
            n += 1
        self.count += n
        return n

    def _emit(self, record: bytes) -> None:
        written = self._fp.write(record)
        # An unbuffered file may take part of a record (disk nearly full): finish it.
        while written is not None and written < len(record):
            written += self._fp.write(memoryview(record)[written:])

    def flush(self) -> None:
        self._fp.flush()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._fp.close()

    def __enter__(self) -> CaptureWriter:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def write_capture(
    path: str | os.PathLike[str],
    meta: Mapping[str, Any] | None,
    events: Iterable[Event],
    *,
    overwrite: bool = False,
) -> int:
    """Write a whole capture in one go (buffered); returns the number of events."""
    with CaptureWriter(path, meta, flush_each=False, overwrite=overwrite) as writer:
        return writer.write_all(events)


def check_header(obj: object, name: str) -> dict[str, Any]:
    """The metadata of a capture whose first record is ``obj``, or SourceError."""
    if not isinstance(obj, dict) or CAPTURE_KEY not in obj:
        raise SourceError(f"{name} is not an invisproxy capture (no capture header)")
    version = obj[CAPTURE_KEY]
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise SourceError(f"{name}: the capture header has a bad version {version!r}")
    if version > CAPTURE_VERSION:
        raise SourceError(
            f"{name}: capture format version {version} is newer than this invisproxy "
            f"understands ({CAPTURE_VERSION}); upgrade invisproxy"
        )
    return {k: v for k, v in obj.items() if k != CAPTURE_KEY}


def read_capture(path: str | os.PathLike[str]) -> Loaded:
    """Open a capture: the header is checked now, the events stream as they are iterated.

    Raises SourceError for a file that is missing, empty, not a capture, or of a newer
    format version. Problems inside (a cut at the end, corrupt or unusable records) are
    reported in ``problems`` and reading carries on past them where it can.
    """
    name = os.fspath(path)
    fp = open_source(name, "capture")
    try:
        unpacker = _unpacker(fp)
        try:
            head = unpacker.unpack()
        except msgpack.OutOfData:
            if fp.tell() == 0:
                raise SourceError(f"{name} is empty: it holds no capture") from None
            raise SourceError(
                f"{name} ends inside its capture header: nothing was recorded in it"
            ) from None
        except _UNPACK_ERRORS:
            raise SourceError(f"{name} is not an invisproxy capture (not msgpack)") from None
        meta = check_header(head, name)
    except BaseException:
        fp.close()
        raise
    problems: list[Problem] = []
    return Loaded("capture", meta, _events(fp, unpacker, problems), problems, fp.close)


def _events(fp: BinaryIO, unpacker: msgpack.Unpacker, problems: list[Problem]) -> Iterator[Event]:
    # t of the previous event: 4.1 wants it non-decreasing; starting at 0.0 lets the
    # fast path below check the range (0 <= t < T_MAX) with one comparison more
    last = 0.0
    base = 0  # file offset of the unpacker's position 0 (moves after a resync)
    good = unpacker.tell()  # file offset just after the last complete record
    index = 0  # records after the header, complete or not
    events = 0
    with fp:
        while True:
            tell = unpacker.tell
            try:
                for obj in unpacker:
                    index += 1
                    at = good
                    good = base + tell()
                    # The usual record, checked here as event_from_record would (a
                    # function call per record is a sixth of the reading time).
                    if (
                        type(obj) is dict
                        and obj.get("event") == "data"
                        and type(t := obj.get("t")) is float
                        and last <= t < T_MAX
                        and type(conn := obj.get("conn")) is str
                        and ((side := obj.get("from")) == "app" or side == "outlet")
                        and type(data := obj.get("data")) is bytes
                        and type(text := obj.get("text")) is bool
                        and type(injected := obj.get("injected", False)) is bool
                    ):
                        last = t
                        events += 1
                        yield Data(t, conn, side, data, text, injected)
                        continue
                    try:
                        event = event_from_record(obj, _payload)
                    except RecordError as exc:
                        problems.append(Problem(f"record {index} at byte {at}", f"{exc}; skipped"))
                        continue
                    if event.t < last:
                        message = went_backwards(event.t, last)
                        problems.append(Problem(f"record {index} at byte {at}", message))
                    last = event.t
                    events += 1
                    yield event
            except _UNPACK_ERRORS as exc:
                reason = str(exc) or type(exc).__name__
                found = _resync(fp, good + 1)
                index += 1
                if found is None:
                    problems.append(
                        Problem(
                            f"record {index} at byte {good}",
                            f"corrupt ({reason}); nothing readable after it",
                        )
                    )
                    return
                problems.append(
                    Problem(
                        f"record {index} at byte {good}",
                        f"corrupt ({reason}); skipped {found - good} bytes "
                        f"to the next record at byte {found}",
                    )
                )
            else:
                end = fp.tell()
                if end == good:
                    return
                found = _resync(fp, good + 1)
                if found is None:
                    problems.append(
                        Problem(
                            "",
                            f"file ends in the middle of a record after {events} events "
                            f"({end - good} bytes at byte {good} were not readable); "
                            "the capture was probably cut short",
                        )
                    )
                    return
                index += 1
                problems.append(
                    Problem(
                        f"record {index} at byte {good}",
                        f"unreadable; skipped {found - good} bytes "
                        f"to the next record at byte {found}",
                    )
                )
            fp.seek(found)
            base = good = found
            unpacker = _unpacker(fp)


def _resync(fp: BinaryIO, start: int) -> int | None:
    """The offset of the next intact event record at or after ``start``, if any."""
    chunk_size = 1 << 20
    overlap = 3
    pos = start
    while True:
        fp.seek(pos)
        chunk = fp.read(chunk_size)
        if not chunk:
            return None
        for match in _RECORD_START.finditer(chunk):
            candidate = pos + match.start()
            if _record_at(fp, candidate):
                return candidate
        if len(chunk) < chunk_size:
            return None
        pos += len(chunk) - overlap


def _record_at(fp: BinaryIO, offset: int) -> bool:
    fp.seek(offset)
    try:
        obj = _unpacker(fp).unpack()
        event_from_record(obj, _payload)
    except (*_UNPACK_ERRORS, RecordError):
        return False
    return True


class CaptureFollower:
    """Tails a capture that another process is still writing (``view --follow``).

    Each :meth:`poll` reads whatever was appended since the previous one and returns
    the events whose records are now complete; the bytes of a record still being
    written are kept until the rest arrives. Polling never blocks. Before the header
    has arrived ``meta`` is None and polls return nothing.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self._fp = open_source(self.path, "capture")
        self._unpacker = msgpack.Unpacker(
            raw=False, strict_map_key=True, ext_hook=_refuse_ext, max_buffer_size=_MAX_RECORD
        )
        self._order = OrderCheck()
        self.meta: dict[str, Any] | None = None
        self.problems: list[Problem] = []
        self.records = 0
        self.broken = False
        self._good = 0

    @property
    def offset(self) -> int:
        """File offset just after the last complete record."""
        return self._good

    @property
    def pending(self) -> int:
        """Bytes read but not yet a complete record."""
        return self._fp.tell() - self._good

    def poll(self, max_bytes: int | None = None) -> list[Event]:
        """Events completed since the last poll, reading at most ``max_bytes`` new bytes.

        Raises SourceError if the file turns out not to be a capture, or too new.
        """
        if self.broken:
            return []
        chunk = self._fp.read(-1 if max_bytes is None else max_bytes)
        if not chunk:
            return []
        self._unpacker.feed(chunk)
        out: list[Event] = []
        try:
            for obj in self._unpacker:
                at = self._good
                self._good = self._unpacker.tell()
                if self.meta is None:
                    self.broken = True  # stays so if the header is refused
                    self.meta = check_header(obj, self.path)
                    self.broken = False
                    continue
                self.records += 1
                try:
                    event = event_from_record(obj, _payload)
                except RecordError as exc:
                    where = f"record {self.records} at byte {at}"
                    self.problems.append(Problem(where, f"{exc}; skipped"))
                    continue
                backwards = self._order.check(event.t)
                if backwards is not None:
                    where = f"record {self.records} at byte {at}"
                    self.problems.append(Problem(where, backwards))
                out.append(event)
        except _UNPACK_ERRORS as exc:
            self.broken = True
            if self.meta is None:
                raise SourceError(
                    f"{self.path} is not an invisproxy capture (not msgpack)"
                ) from None
            self.problems.append(
                Problem(
                    f"record {self.records + 1} at byte {self._good}",
                    f"corrupt ({exc}); following stopped (open the file again to read past it)",
                )
            )
        return out

    def close(self) -> None:
        self._fp.close()

    def __enter__(self) -> CaptureFollower:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
