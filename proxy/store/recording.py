"""Open any recording by what it holds, not what it is called (DESIGN 1.2: one pipeline).

A capture starts with a msgpack map (its header); a trace starts with ``{``. Anything
else is refused with a sentence saying what the file looks like instead.
"""

from __future__ import annotations

import os
from typing import Final

from proxy.store.capture import read_capture
from proxy.store.records import Loaded, Problem, SourceError, SourceKind, open_source
from proxy.store.trace import read_trace

__all__ = ["Problem", "Source", "SourceError", "load_events", "sniff"]

Source = Loaded
"""An opened capture or trace: ``kind``, ``meta``, ``events`` (streamed), ``problems``."""

_WHAT: Final = "capture or trace"
_SNIFF_BYTES: Final = 512
_BOM: Final = b"\xef\xbb\xbf"
_MAGIC: Final = {
    b"\x1f\x8b": "gzip-compressed; decompress it first",
    b"PK\x03\x04": "a zip archive",
    b"\xd4\xc3\xb2\xa1": "a pcap packet capture (invisproxy records its own .invcap files)",
    b"\x0a\x0d\x0d\x0a": "a pcapng packet capture (invisproxy records its own .invcap files)",
    b"SQLite format 3\x00": "an SQLite database",
}


def sniff(path: str | os.PathLike[str]) -> SourceKind:
    """Whether ``path`` holds a capture or a trace; SourceError if it holds neither."""
    name = os.fspath(path)
    with open_source(name, _WHAT) as fp:
        head = fp.read(_SNIFF_BYTES)
    if not head:
        raise SourceError(f"{name} is empty: it holds no capture or trace")
    first = head[0]
    if 0x80 <= first <= 0x8F or first in (0xDE, 0xDF):  # a msgpack map
        return "capture"
    text = head.removeprefix(_BOM).lstrip()
    if text.startswith(b"{"):
        return "trace"
    if not text:
        raise SourceError(f"{name} is blank: it holds no capture or trace")
    raise SourceError(f"{name} is neither an invisproxy capture nor a trace: {_looks_like(head)}")


def _looks_like(head: bytes) -> str:
    for magic, what in _MAGIC.items():
        if head.startswith(magic):
            return f"it looks like {what}"
    start = head[:24]
    try:
        text = start.decode("utf-8")
    except UnicodeDecodeError:
        text = ""
    if not text or not all(c.isprintable() or c in "\t\r\n" for c in text):
        return f"it starts with the bytes {start[:12].hex(' ')}"
    return f"it starts with {text!r}"


def load_events(path: str | os.PathLike[str]) -> Source:
    """Open a capture or a trace, whichever ``path`` holds.

    The metadata is read now; events stream as ``events`` is iterated and the problems
    met on the way are appended to ``problems``. Raises SourceError (a UserError) when
    the file cannot be opened as either: missing, a directory, unreadable, empty, of
    another kind, or written by a newer invisproxy.
    """
    if sniff(path) == "capture":
        return read_capture(path)
    return read_trace(path)
