"""Trace JSONL (DESIGN 4.1): the text form of a capture, one JSON object per line.

Reading streams line by line and never gives up on a bad line: it is reported with its
line number and the rest of the file is still read (raw is truth; lose nothing else).
A line whose ``t`` is not seconds from 0 up to the year 3000 (proxy.core.events.T_MAX), or
whose strings hold an unpaired surrogate (JSON can spell one, no capture can hold it),
is such a bad line.

Additive to 4.1, so that capture -> trace -> capture is byte for byte the same:

- a data event recorded as text whose bytes are not UTF-8 carries ``b64`` and
  ``"form": "text"`` (readers that do not know ``form`` still get the right bytes);
- header metadata JSON cannot hold is tagged by type (``{"$bytes": ...}``, see
  proxy.store.meta.META_TAGS) instead of being turned into text.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Iterable, Iterator, Mapping
from typing import IO, Any, BinaryIO, Final

from proxy.core.events import Data, Event
from proxy.store.intervention import encode_intervention, trace_original
from proxy.store.meta import encode_meta, header_meta
from proxy.store.records import (
    EventChecker,
    EventWriter,
    Loaded,
    Problem,
    RecordError,
    SourceError,
    open_source,
    record_from_event,
)

TRACE_KEY: Final = "invisproxy_trace"
TRACE_VERSION: Final = 1
_BOM: Final = b"\xef\xbb\xbf"


def trace_record(event: Event) -> dict[str, Any]:
    """The JSON object of one event.

    A chunk goes as ``text`` when it was recorded as text and is valid UTF-8, otherwise
    as ``b64``. A text chunk whose bytes are not UTF-8 (a WebSocket text message the
    endpoint got wrong, a TCP chunk flagged by another tool) goes as ``b64`` with
    ``"form": "text"``: a reader that does not know ``form`` still gets the bytes right,
    and ours gets the flag back too.
    """
    rec = record_from_event(event)
    if isinstance(event, Data):
        if event.text:
            try:
                rec["text"] = event.data.decode("utf-8")
            except UnicodeDecodeError:
                rec["b64"] = base64.b64encode(event.data).decode("ascii")
                rec["form"] = "text"
        else:
            rec["b64"] = base64.b64encode(event.data).decode("ascii")
        if event.injected:
            rec["injected"] = True
        if event.intervention is not None:
            rec["intervention"] = encode_intervention(event.intervention)
            if event.original is not None:
                rec.update(trace_original(event.original, event.text))
    return rec


def _line(obj: Mapping[str, Any]) -> str:
    return json.dumps(obj, ensure_ascii=False, allow_nan=False) + "\n"


def _header_line(meta: Mapping[Any, Any]) -> str:
    """The header: metadata tagged where JSON needs it (meta.META_TAGS), as UTF-8
    where it can be and as escapes where a string holds an unpaired surrogate."""
    header: dict[str, Any] = {TRACE_KEY: TRACE_VERSION}
    header.update(encode_meta({k: v for k, v in meta.items() if k != TRACE_KEY}, "json"))
    line = _line(header)
    if not line.isascii():
        try:
            line.encode("utf-8")
        except UnicodeEncodeError:
            line = json.dumps(header, allow_nan=False) + "\n"
    return line


class TraceWriter(EventWriter[str]):
    """Writes a trace event by event, to a path or to an open text stream (e.g. stdout).

    ``meta`` (JSON-compatible) becomes the header line; with ``meta=None`` no header is
    written. A path is created with ``overwrite=False`` refusing an existing file.
    """

    def __init__(
        self,
        target: str | os.PathLike[str] | IO[str],
        meta: Mapping[str, Any] | None = None,
        *,
        overwrite: bool = False,
    ) -> None:
        if isinstance(target, str | os.PathLike):
            super().__init__(
                open(  # noqa: SIM115 - closed by close()
                    target, "w" if overwrite else "x", encoding="utf-8", newline="\n"
                )
            )
        else:
            super().__init__(target, owned=False)
        if meta is not None:
            self._fp.write(_header_line(meta))

    def write(self, event: Event) -> None:
        self._fp.write(_line(trace_record(event)))
        self.count += 1

    def write_all(self, events: Iterable[Event]) -> int:
        write, fp = self._fp.write, self._fp
        n = 0
        for event in events:
            write(json.dumps(trace_record(event), ensure_ascii=False, allow_nan=False))
            write("\n")
            n += 1
        fp.flush()
        self.count += n
        return n


def write_trace(
    target: str | os.PathLike[str] | IO[str],
    meta: Mapping[str, Any] | None,
    events: Iterable[Event],
    *,
    overwrite: bool = False,
) -> int:
    """Write a whole trace; returns the number of events written."""
    with TraceWriter(target, meta, overwrite=overwrite) as writer:
        return writer.write_all(events)


def _payload(rec: Mapping[str, Any]) -> tuple[bytes, bool]:
    text, b64 = rec.get("text"), rec.get("b64")
    if text is not None and b64 is not None:
        raise RecordError("a data event has both 'text' and 'b64'; which is the truth?")
    if isinstance(text, str):
        try:
            return text.encode("utf-8"), True
        except UnicodeEncodeError:
            raise RecordError("field 'text' holds an unpaired surrogate, not UTF-8") from None
    if isinstance(b64, str):
        try:
            return base64.b64decode(b64, validate=True), rec.get("form") == "text"
        except (binascii.Error, ValueError) as exc:
            raise RecordError(f"field 'b64' is not valid base64 ({exc})") from None
    if text is None and b64 is None:
        raise RecordError("a data event needs 'text' or 'b64'")
    key = "text" if text is not None else "b64"
    raise RecordError(f"field {key!r} should be a string")


def _parse(raw: bytes) -> object:
    try:
        return json.loads(raw)
    except RecursionError:
        raise ValueError("nested too deeply") from None


def read_trace(path: str | os.PathLike[str]) -> Loaded:
    """Open a trace: the header is read now, the events stream as they are iterated.

    Raises SourceError when the file cannot be a trace at all (missing, empty, its first
    line neither a header nor an event, or a header version newer than ours).
    """
    name = os.fspath(path)
    fp = open_source(name, "trace")
    try:
        return _open_trace(name, fp)
    except BaseException:
        fp.close()
        raise


def _open_trace(name: str, fp: BinaryIO) -> Loaded:
    lineno = 0
    for raw in fp:
        lineno += 1
        if lineno == 1:
            raw = raw.removeprefix(_BOM)  # editors on Windows like to add one
        if raw.strip():
            break
    else:
        what = "empty" if lineno == 0 else "blank"
        raise SourceError(f"{name} is {what}: it holds no trace")
    try:
        first = _parse(raw)
    except ValueError as exc:
        raise SourceError(
            f"{name} is not an invisproxy trace: line {lineno} is not JSON ({exc})"
        ) from None
    problems: list[Problem] = []
    if isinstance(first, dict) and TRACE_KEY in first:
        meta = header_meta(
            first, TRACE_KEY, TRACE_VERSION, "trace", name, f"line {lineno}", problems
        )
        pending: tuple[int, object] | None = None
    elif isinstance(first, dict) and "event" in first:
        meta = {}
        pending = (lineno, first)
    else:
        raise SourceError(
            f"{name} is not an invisproxy trace: line {lineno} is neither a trace header "
            f'({{"{TRACE_KEY}": 1, ...}}) nor an event'
        )
    events = _events(fp, lineno, pending, problems)
    return Loaded("trace", meta, events, problems, fp.close)


def _events(
    fp: BinaryIO, lineno: int, pending: tuple[int, object] | None, problems: list[Problem]
) -> Iterator[Event]:
    checker = EventChecker(_payload, problems, "line skipped")
    with fp:
        if pending is not None:
            event = checker.event(pending[1], f"line {pending[0]}")
            if event is not None:
                yield event
        for raw in fp:
            lineno += 1
            if not raw.strip():
                continue
            try:
                obj = _parse(raw)
            except ValueError as exc:
                problems.append(Problem(f"line {lineno}", f"not JSON ({exc}); line skipped"))
                continue
            event = checker.event(obj, f"line {lineno}")
            if event is not None:
                yield event
