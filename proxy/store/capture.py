"""Capture files (DESIGN 4.2): msgpack, written while recording, readable after a crash.

Layout: a header map ``{"invisproxy_capture": 1, "created": <unix time>, ...meta}``
followed by one map per event with the fields of 4.1 and the payload as msgpack
``bin``::

    {"t": 0.01, "conn": "c1", "event": "data", "from": "app", "data": b"...", "text": true}

msgpack needs no framing of its own, so a record is complete exactly when it decodes:
a file cut anywhere still yields every record before the cut. Nothing but maps,
strings, numbers, booleans, nil and bin is accepted: no ext types, no pickle, no code.
After a corrupt record the reader finds the next one in time linear in the damage
(see proxy.store.capture_scan); a record whose ``t`` is out of range
(proxy.core.events.T_MAX) is reported and skipped. Header metadata msgpack cannot hold
is tagged (proxy.store.meta.META_TAGS).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping
from typing import Any, Final

import msgpack

from proxy.core.events import Data, Event
from proxy.store.capture_scan import (
    _READ_SIZE,
    _UNPACK_ERRORS,
    ReadStats,
    _payload,
    _Reader,
    _unpacker,
)
from proxy.store.intervention import encode_intervention
from proxy.store.meta import encode_meta, header_meta
from proxy.store.records import (
    ClosedOnExit,
    EventChecker,
    EventWriter,
    Loaded,
    Problem,
    SourceError,
    open_source,
    record_from_event,
)

__all__ = [
    "CAPTURE_KEY",
    "CAPTURE_VERSION",
    "DEFAULT_FOLDER",
    "EXTENSION",
    "CaptureFollower",
    "CaptureWriter",
    "ReadStats",
    "capture_record",
    "check_header",
    "header",
    "read_capture",
    "write_capture",
]

CAPTURE_KEY: Final = "invisproxy_capture"
CAPTURE_VERSION: Final = 1
EXTENSION: Final = ".invcap"
DEFAULT_FOLDER: Final = "captures"


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
        if event.intervention is not None:
            rec["intervention"] = encode_intervention(event.intervention)
            if event.original is not None:
                rec["original"] = event.original
        return rec
    return record_from_event(event)


def header(
    meta: Mapping[Any, Any] | None = None, created: float | None = None, *, stamp: bool = True
) -> dict[str, Any]:
    """The first record of a capture; ``meta`` may override ``created`` (conversions do).

    ``stamp=False`` (conversions) adds no ``created`` of its own: the copy of a file that
    had none stays without one, so a round trip changes nothing.
    """
    meta = {k: v for k, v in (meta or {}).items() if k != CAPTURE_KEY}
    if stamp and "created" not in meta:
        meta = {"created": time.time() if created is None else created, **meta}
    head: dict[str, Any] = {CAPTURE_KEY: CAPTURE_VERSION}
    # meta's own order is kept, so capture -> trace -> capture is byte-identical; it is
    # encoded as a whole, as the reader decodes everything after the format key
    head.update(encode_meta(meta, "msgpack"))
    return head


class CaptureWriter(EventWriter[bytes]):
    """Appends events to a new capture file while recording.

    With ``flush_each`` (the default, for live recording) every event is handed to the
    OS as soon as it is written, so killing the process loses nothing already written;
    ``flush_each=False`` buffers for bulk conversion. ``overwrite=False`` refuses an
    existing file. ``stamp=False`` (conversions) adds no ``created`` the metadata lacks.
    Not thread-safe: one writer per recording task.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        meta: Mapping[str, Any] | None = None,
        *,
        flush_each: bool = True,
        overwrite: bool = False,
        stamp: bool = True,
    ) -> None:
        self.path = os.fspath(path)
        self._packer = msgpack.Packer(use_bin_type=True, strict_types=False)
        # Unbuffered: each write() is one system call, the record reaches the OS whole.
        super().__init__(
            open(  # noqa: SIM115 - closed by close()
                self.path, "wb" if overwrite else "xb", buffering=0 if flush_each else _READ_SIZE
            )
        )
        try:
            self._emit(self._packer.pack(header(meta, stamp=stamp)))
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


def write_capture(
    path: str | os.PathLike[str],
    meta: Mapping[str, Any] | None,
    events: Iterable[Event],
    *,
    overwrite: bool = False,
    stamp: bool = True,
) -> int:
    """Write a whole capture in one go (buffered); returns the number of events."""
    with CaptureWriter(path, meta, flush_each=False, overwrite=overwrite, stamp=stamp) as writer:
        return writer.write_all(events)


def check_header(obj: object, name: str, problems: list[Problem] | None = None) -> dict[str, Any]:
    """The metadata of a capture whose first record is ``obj``, or SourceError.

    Metadata no format can hold (meta.MetaError) is left out and reported in
    ``problems``: the events are what matters.
    """
    if not isinstance(obj, dict) or CAPTURE_KEY not in obj:
        raise SourceError(f"{name} is not an invisproxy capture (no capture header)")
    return header_meta(obj, CAPTURE_KEY, CAPTURE_VERSION, "capture", name, "header", problems)


def read_capture(path: str | os.PathLike[str], *, stats: ReadStats | None = None) -> Loaded:
    """Open a capture: the header is checked now, the events stream as they are iterated.

    Raises SourceError for a file that is missing, empty, not a capture, or of a newer
    format version. Problems inside (a cut at the end, corrupt or unusable records) are
    reported in ``problems`` and reading carries on past them where it can. ``stats``,
    if given, counts the work done (see :class:`ReadStats`).
    """
    name = os.fspath(path)
    fp = open_source(name, "capture")
    stats = ReadStats() if stats is None else stats
    try:
        unpacker = _unpacker()
        head: object = None
        while True:
            chunk = fp.read(_READ_SIZE)
            stats.bytes_read += len(chunk)
            if not chunk:
                if fp.tell() == 0:
                    raise SourceError(f"{name} is empty: it holds no capture")
                raise SourceError(
                    f"{name} ends inside its capture header: nothing was recorded in it"
                )
            unpacker.feed(chunk)
            try:
                head = unpacker.unpack()
                break
            except msgpack.OutOfData:
                continue
            except _UNPACK_ERRORS:
                raise SourceError(f"{name} is not an invisproxy capture (not msgpack)") from None
        problems: list[Problem] = []
        meta = check_header(head, name, problems)
    except BaseException:
        fp.close()
        raise
    reader = _Reader(fp, unpacker, problems, stats)
    return Loaded("capture", meta, reader.events(), problems, fp.close)


class CaptureFollower(ClosedOnExit):
    """Tails a capture that another process is still writing (``view --follow``).

    Each :meth:`poll` reads whatever was appended since the previous one and returns
    the events whose records are now complete; the bytes of a record still being
    written are kept until the rest arrives. Polling never blocks. Before the header
    has arrived ``meta`` is None and polls return nothing.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self._fp = open_source(self.path, "capture")
        self._unpacker = _unpacker()
        self.meta: dict[str, Any] | None = None
        self.problems: list[Problem] = []
        self._checker = EventChecker(_payload, self.problems)
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
                    self.meta = check_header(obj, self.path, self.problems)
                    self.broken = False
                    continue
                self.records += 1
                event = self._checker.event(obj, f"record {self.records} at byte {at}")
                if event is not None:
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
