"""Remove secrets from a capture's raw bytes, so it can be shared.

Raw is truth, so redaction works on the wire bytes, not on decoded messages: it finds
the secrets by decoding (protocol.redact_value says which strings are credentials),
then replaces each secret string's JSON literal wherever it occurs in the same byte
stream, keeping every chunk boundary except where a secret straddled one (the
replacement then goes into the chunk where the secret began).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from proxy.core import protocol
from proxy.core.events import Data, Event
from proxy.core.framing import Framer


@dataclass(slots=True)
class Redaction:
    """What was removed, for the user's report."""

    removed: list[str] = field(default_factory=list)
    replaced: int = 0


def _string_pairs(original: Any, redacted: Any, out: dict[str, str]) -> None:
    """Collect (original string -> replacement) wherever the two JSON trees differ."""
    if isinstance(original, str) and isinstance(redacted, str):
        if original != redacted:
            out[original] = redacted
    elif isinstance(original, dict) and isinstance(redacted, dict):
        for key, value in original.items():
            if key in redacted:
                _string_pairs(value, redacted[key], out)
    elif isinstance(original, list) and isinstance(redacted, list):
        for a, b in zip(original, redacted, strict=False):
            _string_pairs(a, b, out)


def find_secrets(events: Iterable[Event]) -> tuple[dict[bytes, bytes], list[str]]:
    """The JSON literals to replace (old -> new), and what they are."""
    framer = Framer()
    literals: dict[bytes, bytes] = {}
    removed: list[str] = []
    for event in events:
        for frame in framer.feed(event):
            if frame.error is not None:
                continue
            redacted, what = protocol.redact_value(frame.value)
            if not what:
                continue
            removed += [f"{w} (connection {frame.conn}, t={frame.t:.3f})" for w in what]
            pairs: dict[str, str] = {}
            _string_pairs(frame.value, redacted, pairs)
            for old, new in pairs.items():
                for ascii_only in (True, False):
                    # surrogatepass: a string with a lone surrogate (from a "\\ud800"
                    # escape) has no UTF-8 form, and then only its escaped form can match
                    old_raw = json.dumps(old, ensure_ascii=ascii_only)
                    new_raw = json.dumps(new, ensure_ascii=ascii_only)
                    literals[old_raw.encode("utf-8", "surrogatepass")] = new_raw.encode(
                        "utf-8", "surrogatepass"
                    )
    return literals, removed


def redact_events(events: list[Event]) -> tuple[list[Event], Redaction]:
    """A copy of ``events`` with every secret's JSON literal replaced in the raw bytes."""
    literals, removed = find_secrets(events)
    report = Redaction(removed=removed)
    if not literals:
        return list(events), report
    # Per direction, the whole stream with its chunk boundaries.
    streams: dict[tuple[str, str], list[int]] = {}
    for i, event in enumerate(events):
        if isinstance(event, Data):
            streams.setdefault((event.conn, event.side), []).append(i)
    out = list(events)
    for indices in streams.values():
        chunks = [events[i] for i in indices]
        stream = b"".join(c.data for c in chunks if isinstance(c, Data))
        edits = _matches(stream, literals)
        if not edits:
            continue
        report.replaced += len(edits)
        start = 0
        for i, chunk in zip(indices, chunks, strict=True):
            assert isinstance(chunk, Data)
            end = start + len(chunk.data)
            out[i] = Data(
                chunk.t,
                chunk.conn,
                chunk.side,
                _rebuild(stream, start, end, edits),
                chunk.text,
                chunk.injected,
            )
            start = end
    return out, report


def _matches(stream: bytes, literals: dict[bytes, bytes]) -> list[tuple[int, int, bytes]]:
    """Non-overlapping (start, end, replacement) edits, in stream order."""
    found: list[tuple[int, int, bytes]] = []
    for old, new in literals.items():
        pos = stream.find(old)
        while pos >= 0:
            found.append((pos, pos + len(old), new))
            pos = stream.find(old, pos + len(old))
    found.sort()
    edits: list[tuple[int, int, bytes]] = []
    last_end = -1
    for start, end, new in found:
        if start >= last_end:
            edits.append((start, end, new))
            last_end = end
    return edits


def _rebuild(stream: bytes, start: int, end: int, edits: list[tuple[int, int, bytes]]) -> bytes:
    """The bytes of chunk [start, end) after the edits; an edit belongs to its first chunk."""
    parts: list[bytes] = []
    pos = start
    for e_start, e_end, new in edits:
        if e_end <= pos:
            continue
        if e_start >= end:
            break
        if e_start < start:  # begun in an earlier chunk, which holds the replacement
            pos = max(pos, min(e_end, end))
            continue
        parts.append(stream[pos:e_start])
        parts.append(new)
        pos = e_end
    if pos < end:
        parts.append(stream[pos:end])
    return b"".join(parts)
