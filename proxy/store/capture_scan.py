"""Reading the records of a capture however it is damaged (DESIGN 4.2), linear in its size.

The decoder settings every capture reader shares, and the record loop of
proxy.store.capture.read_capture with what it needs to resynchronise after corrupt
bytes: measuring msgpack values from their headers alone, without their payloads. The
capture format itself (header, writer, follower) is proxy.store.capture.
"""

from __future__ import annotations

import mmap
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, BinaryIO, Final, NoReturn

import msgpack

from proxy.core.events import T_MAX, Data, Event, is_utf8
from proxy.store.records import (
    Problem,
    RecordError,
    event_from_record,
    went_backwards,
)

# One WebSocket message or TCP chunk is far below this; the limit only bounds what a
# corrupt length prefix can make the reader allocate.
_MAX_RECORD: Final = 1 << 30
_READ_SIZE: Final = 1 << 20
_RESTART_READ: Final = 1024
# Where a record written by CaptureWriter starts: a small map whose first key is "t"
# holding a float64. Used to find the next record after corrupt bytes.
_RECORD_START: Final = re.compile(rb"[\x80-\x8f]\xa1t\xcb", re.DOTALL)

_UNPACK_ERRORS: Final = (ValueError, TypeError, msgpack.UnpackException)


class _ExtTypeError(ValueError):
    pass


def _refuse_ext(code: int, data: bytes) -> NoReturn:
    raise _ExtTypeError(f"msgpack extension type {code} (captures hold plain data only)")


def _unpacker() -> msgpack.Unpacker:
    return msgpack.Unpacker(
        raw=False,
        strict_map_key=True,
        ext_hook=_refuse_ext,
        max_buffer_size=_MAX_RECORD,
    )


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


@dataclass(slots=True)
class ReadStats:
    """How much work reading a capture took, to show it stays linear in the file size.

    ``bytes_read``: bytes read from the file into the decoder. ``bytes_scanned``: bytes
    searched for the start of a record after corruption. ``candidates``: possible record
    starts examined there. None of them grows faster than the file, however it is damaged.
    """

    bytes_read: int = 0
    bytes_scanned: int = 0
    candidates: int = 0


class _Reader:
    """The record loop of :func:`read_capture`, linear in the file size however damaged.

    The decoder is fed by hand: a chunk of ``_READ_SIZE`` while records decode, but after
    a resynchronisation it starts again at ``_RESTART_READ`` and doubles, so a corrupt
    record right after the restart costs what it spans, not a megabyte. When a record
    outgrows what was fed, :func:`_extent` measures it from its headers (skipping payloads)
    before more is read: a corrupt length claiming the rest of the file is found without
    reading the rest of the file, once per corrupt record. Resynchronising searches the
    mapped file for record starts and checks each candidate from its headers the same way,
    so every byte is searched once and each candidate costs a bounded amount.
    """

    def __init__(
        self,
        fp: BinaryIO,
        unpacker: msgpack.Unpacker,
        problems: list[Problem],
        stats: ReadStats,
    ) -> None:
        self.fp = fp
        self.problems = problems
        self.stats = stats
        self.unpacker = unpacker
        self.base = 0  # file offset of the unpacker's position 0 (moves after a resync)
        self.fed = fp.tell()  # file offset just after the last byte fed
        self.chunk = _READ_SIZE
        self._map: mmap.mmap | None = None

    def view(self) -> mmap.mmap | bytes:
        """The whole file as it is now, mapped (re-mapped when it has grown)."""
        size = os.fstat(self.fp.fileno()).st_size
        if self._map is None or len(self._map) < size:
            if self._map is not None:
                self._map.close()
            self._map = mmap.mmap(self.fp.fileno(), 0, access=mmap.ACCESS_READ) if size else None
        return self._map if self._map is not None else b""

    def refill(self, good: int) -> bool:
        """Feed the decoder more of the file; False at the end of the file, or when the
        record at ``good`` runs past it (as if the file ended here: it is cut short).

        Raises _Damaged when the record at ``good`` is not msgpack at all. Both are
        found from the record's headers, without reading its payload.
        """
        want = self.chunk
        if self.fed - good >= _RESTART_READ:  # a record longer than what was fed
            view = self.view()
            extent = _extent(view, good, len(view))
            if extent == _PAST_END:
                return False
            if isinstance(extent, str):
                raise _Damaged(extent)
            if extent is not None:
                want = max(want, extent - self.fed)
        data = self.fp.read(want)
        if not data:
            return False
        self.stats.bytes_read += len(data)
        self.fed += len(data)
        self.unpacker.feed(data)
        self.chunk = min(self.chunk * 2, _READ_SIZE)
        return True

    def restart(self, at: int) -> None:
        self.fp.seek(at)
        self.base = self.fed = at
        self.chunk = _RESTART_READ
        self.unpacker = _unpacker()

    def resync(self, start: int) -> int | None:
        """The offset of the next intact event record at or after ``start``, if any."""
        view = self.view()
        stats = self.stats
        stats.bytes_scanned += max(0, len(view) - start)
        for match in _RECORD_START.finditer(view, start):
            stats.candidates += 1
            candidate = match.start()
            rec = _skim(view, candidate)
            if rec is None:
                continue
            try:
                event_from_record(rec, _payload)
            except RecordError:
                continue
            stats.bytes_scanned -= len(view) - candidate  # searched only up to here
            return candidate
        return None

    def close(self) -> None:
        if self._map is not None:
            self._map.close()
            self._map = None

    def events(self) -> Iterator[Event]:
        try:
            yield from self._events()
        finally:
            self.close()

    def _events(self) -> Iterator[Event]:
        problems = self.problems
        # t of the previous event: 4.1 wants it non-decreasing; starting at 0.0 lets the
        # fast path below check the range (0 <= t < T_MAX) with one comparison more
        last = 0.0
        good = self.base + self.unpacker.tell()  # file offset after the last complete record
        index = 0  # records after the header, complete or not
        events = 0
        with self.fp:
            while True:
                unpacker = self.unpacker
                base, tell = self.base, unpacker.tell
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
                            and "intervention" not in obj
                        ):
                            last = t
                            events += 1
                            yield Data(t, conn, side, data, text, injected)
                            continue
                        try:
                            event = event_from_record(obj, _payload)
                        except RecordError as exc:
                            where = f"record {index} at byte {at}"
                            problems.append(Problem(where, f"{exc}; skipped"))
                            continue
                        if event.t < last:
                            message = went_backwards(event.t, last)
                            problems.append(Problem(f"record {index} at byte {at}", message))
                        last = event.t
                        events += 1
                        yield event
                    if self.refill(good):
                        continue
                except (*_UNPACK_ERRORS, _Damaged) as exc:
                    reason = str(exc) or type(exc).__name__
                    found = self.resync(good + 1)
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
                    if self.fed == good:
                        return
                    end = os.fstat(self.fp.fileno()).st_size
                    found = self.resync(good + 1)
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
                            f"unreadable (it runs past the end of the file); skipped "
                            f"{found - good} bytes "
                            f"to the next record at byte {found}",
                        )
                    )
                self.restart(found)
                good = found


class _Damaged(ValueError):
    """A record found unreadable from its headers alone (see :func:`_extent`)."""


# Payload lengths and element counts follow these msgpack type bytes (big-endian).
_SIZED: Final = {
    0xC4: ("bin", 1), 0xC5: ("bin", 2), 0xC6: ("bin", 4),
    0xD9: ("str", 1), 0xDA: ("str", 2), 0xDB: ("str", 4),
    0xDC: ("array", 2), 0xDD: ("array", 4), 0xDE: ("map", 2), 0xDF: ("map", 4),
}  # fmt: skip
_FIXED: Final = {
    0xC0: 0, 0xC2: 0, 0xC3: 0, 0xCA: 4, 0xCB: 8,
    0xCC: 1, 0xCD: 2, 0xCE: 4, 0xCF: 8, 0xD0: 1, 0xD1: 2, 0xD2: 4, 0xD3: 8,
}  # fmt: skip
_SKIM_ELEMENTS: Final = 256  # elements a resync candidate may have, nested ones included
_SKIM_TEXT: Final = 4096  # bytes of strings a resync candidate may have
_EXTENT_ELEMENTS: Final = 1 << 16  # past this _extent gives up (says "unknown")
_PAST_END: Final = "runs past the end of the file"
_NESTED: Final = object()  # stands for a nested value in a skimmed record: never valid


def _head(buf: mmap.mmap | bytes, pos: int, end: int) -> tuple[str, int, int] | str:
    """The element at ``pos``: (kind, header length, payload length or element count).

    Kinds: "scalar", "str", "bin", "array", "map". A string explains why it is not one.
    """
    if pos >= end:
        return "cut short"
    b = buf[pos]
    if b <= 0x7F or b >= 0xE0:
        return ("scalar", 1, 0)
    if b <= 0x8F:
        return ("map", 1, b & 0x0F)
    if b <= 0x9F:
        return ("array", 1, b & 0x0F)
    if b <= 0xBF:
        return ("str", 1, b & 0x1F)
    fixed = _FIXED.get(b)
    if fixed is not None:
        return ("scalar", 1, fixed)
    sized = _SIZED.get(b)
    if sized is None:
        if 0xC7 <= b <= 0xC9 or 0xD4 <= b <= 0xD8:
            return f"msgpack extension type at byte {pos}"
        return f"invalid msgpack byte 0x{b:02x} at byte {pos}"
    kind, width = sized
    if pos + 1 + width > end:
        return "cut short"
    return (kind, 1 + width, int.from_bytes(buf[pos + 1 : pos + 1 + width], "big"))


def _extent(buf: mmap.mmap | bytes, pos: int, end: int) -> int | str | None:
    """Where the msgpack value at ``pos`` ends, from its headers alone (payloads skipped).

    A string says why it cannot be whole before ``end``: ``_PAST_END`` when a length runs
    past ``end``, otherwise the bad byte; None means it has more than ``_EXTENT_ELEMENTS``
    elements, so unknown.
    The cost is one step per element, whatever the lengths say.
    """
    todo = 1
    steps = 0
    while todo:
        todo -= 1
        steps += 1
        if steps > _EXTENT_ELEMENTS:
            return None
        head = _head(buf, pos, end)
        if isinstance(head, str):
            return head if head != "cut short" else _PAST_END
        kind, size, n = head
        pos += size
        if kind == "array":
            todo += n
        elif kind == "map":
            todo += 2 * n
        else:
            pos += n
        if pos > end:
            return _PAST_END
    return pos


def _skim(buf: mmap.mmap | bytes, pos: int) -> dict[str, Any] | None:
    """The record at ``pos`` if it could be one (a complete map with string keys), with
    every bin as ``b""`` and nested values as a sentinel: enough to validate it as an
    event at a bounded cost (candidates with long strings or many elements are refused).
    """
    end = len(buf)
    head = _head(buf, pos, end)
    if isinstance(head, str) or head[0] != "map" or head[2] > _SKIM_ELEMENTS:
        return None
    pos += head[1]
    rec: dict[str, Any] = {}
    elements = 0
    text = 0
    for i in range(2 * head[2]):
        head = _head(buf, pos, end)
        if isinstance(head, str):
            return None
        kind, size, n = head
        start = pos
        if kind in ("array", "map"):
            elements += n
            if elements > _SKIM_ELEMENTS:
                return None
            stop = _extent(buf, pos, end)
            if not isinstance(stop, int):
                return None
            value: Any = _NESTED
        else:
            stop = pos + size + n
            if stop > end:
                return None
            if kind == "bin":
                value = b""
            else:
                if kind == "str":
                    text += n
                    if text > _SKIM_TEXT:
                        return None
                try:
                    value = msgpack.unpackb(buf[start:stop], raw=False)
                except _UNPACK_ERRORS:
                    return None
        pos = stop
        if i % 2 == 0:
            if not isinstance(value, str):
                return None
            key = value
        else:
            rec[key] = value
    return rec
