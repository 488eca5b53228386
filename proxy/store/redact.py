"""Remove secrets (and, to share a capture publicly, identifiers) from wire events.

A secret can be written in many ways (JSON escapes, a number, an object, the first of
two duplicate keys), so searching the bytes for one spelling of it misses the others.
Redaction therefore works frame by frame, on the frame's exact byte span in its
stream (the framer gives a frame's bytes, not its offset; the span is found here by
walking the stream alongside it):

- a valid frame that holds a secret is decoded with every key kept (duplicates too,
  in order, numbers as written) and rewritten as a whole, compactly, with the secret
  replaced;
- a run of adjacent invalid frames (garbage that chunk boundaries cut into several)
  that names a secret key, or holds a URL with credentials, is scrubbed from there to
  its end: ``"pass":<redacted>}``, which stays invalid.

The new bytes that equal the old ones' start keep their chunks; the rest goes into the
frame's last chunk, so it completes in the same event as before (chunk boundaries
inside a rewritten frame move; a chunk left empty is dropped). Every other byte stays
as it was. The report names each redaction by message id (the id ``analyze`` gives
the original) and field. With ``pseudonymise`` (``export --redact=all``) serial
numbers, MAC and IP addresses and SSIDs are also replaced, each original by the same
pseudonym everywhere (``SN-1``, ``02:00:00:00:00:01``, ``198.18.0.1``, ``SSID-1``), so
the analysis of the copy still correlates devices and connections as the original's.

One frame is redacted by proxy.store.frame_redaction; this module finds each frame's
span in its stream and puts the new bytes back into the events.
"""

from __future__ import annotations

import bisect
import contextlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any, Final

from proxy.core import protocol
from proxy.core.errors import UserError
from proxy.core.events import Close, Data, Event, Open, is_utf8
from proxy.core.framing import Frame, Framer
from proxy.core.model import Message
from proxy.store.frame_redaction import (
    _WS,
    Pseudonyms,
    _loads,
    _may_hold_secret,
    _scrub,
    redact_frame,
)

__all__ = [
    "Pseudonyms",
    "Redaction",
    "RedactionError",
    "Removal",
    "redact_events",
    "redact_frame",
    "redact_message",
    "redact_meta",
]


class RedactionError(UserError):
    """A frame that holds a secret could not be rewritten: nothing is written."""


@dataclass(slots=True)
class Removal:
    """One secret taken out: which message, which field, and how."""

    message: int
    field: str
    where: str

    def __str__(self) -> str:
        return f"message {self.message} ({self.where}): {self.field}"


@dataclass(slots=True)
class Redaction:
    """What was removed, for the user's report (never the secrets themselves)."""

    removals: list[Removal] = field(default_factory=list)
    frames: int = 0  # frames rewritten or scrubbed
    pseudonyms: dict[str, int] = field(default_factory=dict)  # kind -> originals replaced
    pseudo: Pseudonyms | None = field(default=None, repr=False)

    @property
    def removed(self) -> list[str]:
        return [str(r) for r in self.removals]


# ---------------------------------------------------------------------------
# A capture


@dataclass(slots=True)
class _Stream:
    """One TCP direction: its bytes so far, its chunks, and where framing is in it."""

    buf: bytearray = field(default_factory=bytearray)
    chunks: list[tuple[int, int]] = field(default_factory=list)  # (event index, start)
    cursor: int = 0
    edits: list[tuple[int, int, bytes]] = field(default_factory=list)
    # adjacent invalid frames not yet judged: (message id, frame, start)
    region: list[tuple[int, Frame, int]] = field(default_factory=list)


def _locate(st: _Stream, raw: bytes) -> int | None:
    """Where ``raw`` (the next frame of this stream) starts in it."""
    buf, pos = st.buf, st.cursor
    n = len(buf)
    while pos < n and buf[pos] in _WS:
        pos += 1
    if not buf.startswith(raw, pos):
        found = buf.find(raw, st.cursor)
        if found < 0:
            return None
        pos = found
    st.cursor = pos + len(raw)
    return pos


def redact_events(
    events: Iterable[Event], *, pseudonymise: bool = False
) -> tuple[list[Event], Redaction]:
    """A copy of ``events`` with every secret removed (see the module docstring).

    Raises RedactionError when a frame that holds a secret cannot be rewritten.
    """
    events = list(events)
    pseudo = Pseudonyms() if pseudonymise else None
    if pseudo is not None:
        _register_serials(events, pseudo)
    report = Redaction(pseudo=pseudo)
    out: list[Event | None] = list(events)
    framer = Framer()
    streams: dict[tuple[str, str], _Stream] = {}
    done: list[_Stream] = []
    ws: set[str] = set()
    msg_id = 0

    def record(mid: int, frame: Frame, fields: list[str], where: str) -> str:
        place = f"{where} from the {frame.side}, {frame.conn}, t={frame.t:.3f}"
        report.removals += [Removal(mid, f, place) for f in fields]
        report.frames += 1
        return place

    def lost(mid: int, place: str) -> RedactionError:
        return RedactionError(
            f"could not find the bytes of message {mid} ({place}) in its stream, "
            "so its secrets could not be removed; nothing was written"
        )

    def judge_region(st: _Stream) -> None:
        """Scrub a run of adjacent invalid frames as one: garbage that a chunk
        boundary cut in two must not hide a key from its value."""
        region, st.region = st.region, []
        if not region:
            return
        first, last = region[0], region[-1]
        begin, end = first[2], last[2] + len(last[1].raw)
        old = bytes(st.buf[begin:end])
        if pseudo is None and not _may_hold_secret(old):
            return
        text = old.decode("utf-8", "surrogateescape")
        scrubbed, fields, cut = _scrub(text, pseudo)
        if scrubbed == text:
            return
        new = scrubbed.encode("utf-8", "surrogateescape")
        # the report names the message where the scrub began
        cut_at = begin + len(text[:cut].encode("utf-8", "surrogateescape"))
        at = next((r for r in region if r[2] + len(r[1].raw) > cut_at), last)
        record(at[0], at[1], fields, "invalid frame")
        st.edits.append((begin, end, new))

    def handle(frames: list[Frame], event_index: int) -> None:
        nonlocal msg_id
        for frame in frames:
            mid, msg_id = msg_id, msg_id + 1
            conn, side = frame.conn, frame.side
            if conn in ws:
                new, fields, where = redact_frame(frame.raw, frame.error is None, pseudo)
                if new is not frame.raw:
                    record(mid, frame, fields, where)
                    ev = events[event_index]
                    assert isinstance(ev, Data)
                    out[event_index] = replace(ev, data=new)
                continue
            st = streams.get((conn, side))
            start = None if st is None else _locate(st, frame.raw)
            if st is not None and start is not None and frame.error is not None:
                if st.region and st.buf[st.region[-1][2] + len(st.region[-1][1].raw) : start].strip(
                    _WS
                ):
                    judge_region(st)  # not adjacent: only whitespace may lie between
                st.region.append((mid, frame, start))
                continue
            if st is not None:
                judge_region(st)
            new, fields, where = redact_frame(frame.raw, frame.error is None, pseudo)
            if new is frame.raw:
                continue
            place = record(mid, frame, fields, where)
            if st is None or start is None:
                raise lost(mid, place)
            st.edits.append((start, start + len(frame.raw), new))

    for i, event in enumerate(events):
        conn = event.conn
        if type(event) is Data:
            if conn not in ws:
                st = streams.get((conn, event.side))
                if st is None:
                    st = streams[conn, event.side] = _Stream()
                st.chunks.append((i, len(st.buf)))
                st.buf += event.data
            handle(framer.feed(event), i)
            continue
        # An open or a close ends the connection's streams (the framer flushes them).
        handle(framer.feed(event), i)
        for side in ("app", "outlet"):
            old = streams.pop((conn, side), None)
            if old is not None:
                done.append(old)
        if isinstance(event, Open):
            if event.transport == "ws":
                ws.add(conn)
            else:
                ws.discard(conn)
            if pseudo is not None:
                out[i] = replace(
                    event, app=pseudo.address(event.app), outlet=pseudo.address(event.outlet)
                )
        elif isinstance(event, Close):
            ws.discard(conn)
            if pseudo is not None and event.error:
                out[i] = replace(event, error=pseudo.text(event.error))
    for st in [*done, *streams.values()]:
        judge_region(st)
        if st.edits:
            _apply(st, events, out)
    _redact_originals(out, pseudo)
    if pseudo is not None:
        report.pseudonyms = pseudo.counts()
    return [e for e in out if e is not None], report


def _redact_originals(out: list[Event | None], pseudo: Pseudonyms | None) -> None:
    """Scrub what was received of a message the proxy changed (``original``, one frame
    and its whitespace): it holds the same secrets as what was forwarded. A rule's own
    text may set one too (``set payload.callbackArgs.0.password="..."``): its value goes."""
    for i, ev in enumerate(out):
        if type(ev) is not Data or ev.intervention is None:
            continue
        if ev.original is not None:
            new, _, _ = redact_frame(ev.original, True, pseudo)
            if new is not ev.original:
                ev = replace(ev, original=new)
        mark = ev.intervention
        assert mark is not None
        rule, why = redact_rule_text(mark.rule), redact_rule_text(mark.why)
        if rule != mark.rule or why != mark.why:
            ev = replace(ev, intervention=replace(mark, rule=rule, why=why))
        out[i] = ev


_SECRET_NAMES: Final = "|".join(sorted(protocol.SECRET_KEYS | protocol.MQTT_ACCOUNT_KEYS))
_SECRET_ASSIGNMENT: Final = re.compile(
    r"((?:^|[.\s])(?:" + _SECRET_NAMES + r")\s*=\s*)(\"(?:[^\"\\]|\\.)*\"|[^\s]+)",
    re.IGNORECASE,
)


def redact_rule_text(text: str | None) -> str | None:
    """A rule's text with the values it assigns to credential fields replaced."""
    if text is None or "=" not in text:
        return text
    return _SECRET_ASSIGNMENT.sub(lambda m: m.group(1) + json.dumps(protocol.REDACTED), text)


def _register_serials(events: list[Event], pseudo: Pseudonyms) -> None:
    framer = Framer()
    for event in events:
        for frame in framer.feed(event):
            if frame.error is None and b"sn" in frame.raw.lower():
                with contextlib.suppress(ValueError, RecursionError):
                    pseudo.register(_loads(frame.raw.decode("utf-8")))


def _common_prefix(a: bytes, b: bytes) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def _apply(st: _Stream, events: list[Event], out: list[Event | None]) -> None:
    """Lay the edited frames over the stream's chunks.

    The bytes a frame's new form shares with its start keep their chunks; the rest
    goes into the frame's last chunk (at least one byte), so the frame still completes
    in the same event, and a scrubbed frame is cut where it was. A chunk left with no
    bytes is dropped.
    """
    buf = st.buf
    starts = [start for _, start in st.chunks]
    ends = [*starts[1:], len(buf)]
    # per chunk touched: (start, end, new bytes) of the stretches of it that change
    spans: dict[int, list[tuple[int, int, bytes]]] = {}
    for start, end, new in sorted(st.edits):
        keep = min(_common_prefix(bytes(buf[start:end]), new), len(new) - 1)
        first = bisect.bisect_right(starts, start) - 1
        last = first
        while ends[last] < end:
            last += 1
        for c in range(first, last + 1):
            a, b = max(starts[c], start), min(ends[c], end)
            lo = min(a - start, keep)
            hi = len(new) if c == last else max(lo, min(b - start, keep))
            spans.setdefault(c, []).append((a, b, new[lo:hi]))
    for c, changes in spans.items():
        index = st.chunks[c][0]
        ev = events[index]
        assert isinstance(ev, Data)
        parts: list[bytes | bytearray] = []
        pos = starts[c]
        for a, b, piece in changes:
            parts += (buf[pos:a], piece)
            pos = b
        parts.append(buf[pos : ends[c]])
        data = b"".join(parts)
        if data == ev.data:
            continue
        out[index] = replace(ev, data=data, text=is_utf8(data)) if data else None


def redact_meta(meta: dict[str, Any], report: Redaction) -> dict[str, Any]:
    """The header metadata to write with a redacted copy: what was done (never the
    secrets or the originals), and with pseudonyms its addresses replaced."""
    pseudo = report.pseudo

    def clean(v: Any) -> Any:
        if pseudo is None:
            return v
        if type(v) is str:
            return pseudo.text(v)
        if type(v) is list:
            return [clean(x) for x in v]
        if type(v) is dict:
            return {k: clean(x) for k, x in v.items()}
        return v

    out = {k: clean(v) for k, v in meta.items()}
    out["redacted"] = report.removed
    if pseudo is not None:
        out["pseudonymised"] = report.pseudonyms
    return out


def redact_message(msg: Message) -> tuple[Message, list[str]]:
    """The message as a shareable copy shows it (the TUI's copy and export), and the
    fields removed; ``msg`` itself when it holds no secret.

    Its annotations are those of the redacted frame (the decoder quotes arguments in
    some) plus those the analysis added, which name no argument values.
    """
    valid = msg.kind != "invalid"
    new_raw, fields, _ = redact_frame(msg.raw, valid, None)
    if new_raw is msg.raw:
        return msg, []
    if not valid:
        copy = protocol.decode(
            Frame(msg.t, msg.conn, msg.side, new_raw, None, "secrets scrubbed", msg.injected),
            msg.id,
            msg.transport,
        )
        copy.annotations = list(msg.annotations)
        return copy, fields
    old = protocol.decode(_frame_of(msg, msg.raw), msg.id, msg.transport)
    copy = protocol.decode(_frame_of(msg, new_raw), msg.id, msg.transport)
    frame_level = old.annotations
    later = [a for a in msg.annotations if a not in frame_level]
    copy.kind, copy.callback, copy.name = msg.kind, msg.callback, msg.name
    copy.annotations = copy.annotations + later
    return copy, fields


def _frame_of(msg: Message, raw: bytes) -> Frame:
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):
        return Frame(msg.t, msg.conn, msg.side, raw, None, "not JSON", msg.injected)
    return Frame(msg.t, msg.conn, msg.side, raw, value, None, msg.injected)
