"""Incremental JSON splitting for the simulator and the scripted app.

The outlet's TCP stream is not line-based (protocol/README §1.2): objects may sit
back to back or be split across reads, so both ends of our test rig cut values out of
the byte stream with ``raw_decode`` instead of splitting on newlines. Garbage is
skipped up to the next ``{`` or ``[`` so one bad byte never wedges the stream.
"""

from __future__ import annotations

import codecs
import json
from typing import Any

_WHITESPACE = " \t\r\n"
_LITERALS = ("true", "false", "null")


def _looks_incomplete(text: str, exc: json.JSONDecodeError) -> bool:
    """Whether a decode error means "wait for more bytes" rather than "garbage"."""
    if exc.msg.startswith("Unterminated string"):
        return True
    rest = text[exc.pos :]
    if not rest.strip():
        return True
    if exc.msg.startswith("Invalid \\uXXXX escape") and len(text) - exc.pos <= 6:
        return True
    stripped = rest.strip()
    return stripped == "-" or any(lit.startswith(stripped) for lit in _LITERALS)


class JsonStream:
    """Turns chunks of bytes into complete top-level JSON values (objects and arrays)."""

    def __init__(self, max_buffer: int = 1 << 20) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._json = json.JSONDecoder()
        self._buf = ""
        self._max = max_buffer
        self.skipped = 0
        """Characters thrown away as garbage (or as an over-long value)."""

    @property
    def pending(self) -> str:
        """Text received but not yet part of a complete value."""
        return self._buf

    def feed(self, data: bytes) -> list[Any]:
        buf = self._buf + self._decoder.decode(data)
        values: list[Any] = []
        pos, end = 0, len(buf)
        while True:
            while pos < end and buf[pos] in _WHITESPACE:
                pos += 1
            if pos >= end:
                break
            if buf[pos] not in "{[":
                pos = self._resync(buf, pos)
                continue
            try:
                value, pos_after = self._json.raw_decode(buf, pos)
            except json.JSONDecodeError as exc:
                if _looks_incomplete(buf, exc):
                    break
                pos = self._resync(buf, pos)
                continue
            values.append(value)
            pos = pos_after
        self._buf = buf[pos:]
        if len(self._buf) > self._max:
            self.skipped += len(self._buf)
            self._buf = ""
        return values

    def _resync(self, buf: str, pos: int) -> int:
        """Skip from ``pos`` to the next character that can start an object or array."""
        candidates = [i for i in (buf.find("{", pos + 1), buf.find("[", pos + 1)) if i >= 0]
        nxt = min(candidates) if candidates else len(buf)
        self.skipped += nxt - pos
        return nxt
