"""How a message reads on screen: its one-line summary, its fields, glyphs and time text.

The decoder (``proxy.core.protocol``) owns the meaning of a message; this module only asks it
and guards the screen against a decoder that fails on odd input (DESIGN 1.3: analysis
may fail, the view must not).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from typing import Any, Final, Literal, NamedTuple

from rich.cells import cell_len, set_cell_size

from proxy.core.events import clock_text, seconds_text
from proxy.core.model import Connection, Message, Row, intervention_text

TimeMode = Literal["relative", "delta", "absolute"]
TIME_MODES: Final[tuple[TimeMode, ...]] = ("relative", "delta", "absolute")

ARROWS: Final = {"app": "→", "outlet": "←"}
ARROW_MEANING: Final = {"app": "app → outlet", "outlet": "outlet → app"}

# One glyph per link relation, as seen from the selected message (DESIGN 4.4 relations).
RELATION_GLYPHS: Final = {
    "response": "↩",
    "ota-ack": "a",
    "ota-sync": "s",
    "ota-progress": "%",
    "ota-result": "=",
    "ota-verify": "✓",
}
# What the proxy did to a message (DESIGN 4.1 interventions), one cell beside its arrow.
INTERVENTION_GLYPHS: Final = {
    "drop": "⊘",
    "delay": "◷",
    "close": "⊗",
    "reply": "↺",
    "set": "✎",
    "edit": "✎",
    "hold": "‖",
    "inject": "+",
}
SESSION_GLYPH: Final = "┊"
MARK_GLYPH: Final = "★"
SEVERITY_GLYPHS: Final = {"error": "✖", "warning": "▲", "info": "●"}
SEVERITY_RANK: Final = {"info": 0, "warning": 1, "error": 2}

# The analysis' verdict on a row, short enough to stay on the row at 80 columns: a
# reader should not have to open the detail to learn that a "failed" result is the
# firmware's harmless early quirk. Per code: a long and a short form (the short one is
# used when the long one would cut the summary), and whether the tag is a must or only
# shown when there is room (a restart is also told by the close row just below).
# Codes whose meaning the decoder's summary already states need no tag: invalid-json
# ("invalid: ..."), puback-failure ("[PUBACK 0: ...]"), www-phase-complete ("WWW
# partition done, main phase follows").
ANNOTATION_TAGS: Final = {
    "spurious-ota-result": ("spurious, not a failure", "not a failure", True),
    "ota-failed": ("the update failed", "update failed", True),
    "ota-stalled": ("update stalled here", "stalled", True),
    "fw-mismatch": ("wrong firmware after update", "wrong firmware", True),
    "unanswered-request": ("no reply", "no reply", True),
    "ota-restart": ("outlet restarted", "restarted", False),
    "ota-retry": ("retry while an update runs", "retry", False),
    "app-gave-up": ("the app gave up on the update", "app gave up", True),
    "refusal-ignored": ("app waits after a refusal", "app waits", False),
}
TAG_SEPARATOR: Final = " · "
MIN_SUMMARY: Final = 16  # cells of summary kept before a tag is shortened


def _load_decoder() -> tuple[Callable[[Message], str] | None, Callable[[Message], Any] | None]:
    try:
        from proxy.core import protocol
    except ImportError:
        return None, None
    return getattr(protocol, "summary", None), getattr(protocol, "fields", None)


_summary_fn, _fields_fn = _load_decoder()


def compact_json(value: Any) -> str:
    try:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, sort_keys=False)
    except (TypeError, ValueError):
        return repr(value)


def summary(msg: Message) -> str:
    """The decoder's one-line summary; the raw frame if there is no decoder or it fails."""
    if _summary_fn is not None:
        try:
            return _summary_fn(msg)
        except Exception as exc:  # a decoder bug must not take the timeline down
            return f"(summary failed: {exc.__class__.__name__}) {raw_text(msg, 60)}"
    if msg.kind == "invalid":
        return raw_text(msg, 80)
    parts = []
    if msg.puback is not None:
        parts.append(f"PUBACK {msg.puback}")
    if msg.args is not None:
        parts.append(compact_json(msg.args))
    return " ".join(parts)


def fields(msg: Message) -> list[tuple[str, str, str]]:
    """(name, value, meaning) rows for the detail pane."""
    if _fields_fn is not None:
        try:
            return [(str(n), _value_text(v), str(m or "")) for n, v, m in _fields_fn(msg)]
        except Exception as exc:
            return [("decoder", "failed", f"{exc.__class__.__name__}: {exc}")]
    rows = [
        ("kind", msg.kind, ""),
        ("callback", _value_text(msg.callback), msg.name),
        ("packetID", _value_text(msg.packet_id), ""),
    ]
    if msg.sn is not None:
        rows.append(("sn", _value_text(msg.sn), "outlet serial"))
    if msg.puback is not None:
        rows.append(("PUBACK", _value_text(msg.puback), "1 = processed, 0 = failed"))
    if msg.args is not None:
        rows.append(("args", compact_json(msg.args), ""))
    return rows


def _value_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return "—"
    return compact_json(value)


def raw_text(msg: Message, limit: int) -> str:
    return _bytes_text(msg.raw, limit)


def intervention_glyph(msg: Message) -> str:
    """The timeline's one-cell mark of what the proxy did to ``msg`` (" " for nothing)."""
    mark = msg.intervention
    return " " if mark is None else INTERVENTION_GLYPHS.get(mark.action, "?")


def intervention_lines(msg: Message) -> list[tuple[str, str]]:
    """(label, text) lines saying what the proxy did to ``msg`` and why, and for a changed
    message what was received and what was forwarded; empty when nothing was done."""
    if msg.intervention is None:
        return []
    lines = [("", intervention_text(msg))]
    if msg.forwarded is not None:
        lines.append(("received", _bytes_text(msg.raw)))
        lines.append(("forwarded", _bytes_text(msg.forwarded)))
    return lines


def _bytes_text(data: bytes, limit: int = 2000) -> str:
    text = data.decode("utf-8", "replace").replace("\n", "⏎").replace("\r", "␍")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def worst_severity(msg: Message) -> str | None:
    worst: str | None = None
    for ann in msg.annotations:
        if worst is None or SEVERITY_RANK[ann.severity] > SEVERITY_RANK[worst]:
            worst = ann.severity
    return worst


class Tag(NamedTuple):
    long: str
    short: str
    must: bool
    severity: str


def tags(msg: Message) -> list[Tag]:
    """The message's notable annotations as tags, worst first."""
    found = [
        Tag(*ANNOTATION_TAGS[a.code], a.severity)
        for a in msg.annotations
        if a.code in ANNOTATION_TAGS
    ]
    found.sort(key=lambda tag: -SEVERITY_RANK[tag.severity])
    return found


def clip(text: str, width: int) -> str:
    """``text`` in at most ``width`` cells, an ellipsis marking a cut."""
    if cell_len(text) <= width:
        return text
    if width <= 1:
        return "…"[: max(width, 0)]
    return set_cell_size(text, width - 1) + "…"


def fit(summary: str, tags: list[Tag], width: int) -> tuple[str, str]:
    """Share ``width`` cells between a summary and its tags, cutting the tags last.

    Every tag in long form if all fits, else in short form; else only the tags that
    must show, long then short; else the summary is cut to make room for those (but
    never below ``MIN_SUMMARY`` cells, after which the tags are cut too).
    """
    size = cell_len(summary)
    musts = [t for t in tags if t.must]
    for chosen in (tags, musts):
        for form in (0, 1):
            text = "".join(TAG_SEPARATOR + (t.short if form else t.long) for t in chosen)
            if size + cell_len(text) <= width:
                return summary, text
    short = "".join(TAG_SEPARATOR + t.short for t in musts)
    room = width - cell_len(short)
    if room >= MIN_SUMMARY:
        return clip(summary, room), short
    kept = clip(summary, max(room, min(MIN_SUMMARY, width // 2)))
    return kept, clip(short, width - cell_len(kept))


_ERRNO = re.compile(r"\[Errno (\d+)\]")
WEBSOCKET_CODES: Final = {
    1000: "normal",
    1001: "going away",
    1002: "protocol error",
    1006: "dropped, no close frame",
    1009: "message too big",
    1011: "server error",
}


def close_reason(error: str) -> str:
    """A close error in a few words ("outlet down: connection refused").

    The relay records the OS error verbatim (``outlet unreachable: [Errno 111] Connect
    call failed ('127.0.0.1', 3333)``); the timeline shows what it means, the detail
    pane the full text.
    """
    text = error.strip()
    down = text.startswith("outlet unreachable")
    if down:
        text = text.removeprefix("outlet unreachable").lstrip(": ")
    errno = _ERRNO.search(text)
    if errno is not None:  # the OS's words for the number, without addresses
        text = os.strerror(int(errno.group(1))).lower()
    ws = re.fullmatch(r"WebSocket closed with code (\d+)", text)
    if ws is not None:
        code = int(ws.group(1))
        meaning = WEBSOCKET_CODES.get(code)
        text = f"WebSocket {code}" + (f" ({meaning})" if meaning else "")
    if down:
        text = f"outlet down: {text}" if text else "outlet down"
    return clip(text, 60)


def connection_text(row: Row, conn: Connection | None) -> str:
    """The summary of a connection open/close row."""
    if conn is None:
        return f"connection {row.conn} {'opened' if row.kind == 'open' else 'closed'}"
    if row.kind == "open":
        return f"open {conn.transport} app {conn.app} ⇄ outlet {conn.outlet}"
    who = f" by {conn.closed_by}" if conn.closed_by else ""
    lifetime = conn.closed - conn.opened if conn.closed is not None else None
    # A connection the proxy refused at once had no life worth a number.
    life = ""
    if lifetime is not None and not (conn.error and lifetime < 0.001):
        life = f" after {lifetime:.3f}s"
    err = f"{TAG_SEPARATOR}{close_reason(conn.error)}" if conn.error else ""
    return f"closed{who}{life}{err}"


def time_text(mode: TimeMode, t: float, start: float, previous: float | None) -> str:
    """The timeline's clock column; total (any float, even one no reader lets through)."""
    if mode == "absolute":
        return clock_text(t)
    if mode == "delta":
        return f"Δ{seconds_text(t - (previous if previous is not None else t))}"
    return seconds_text(t - start)


def hexdump(data: bytes, width: int = 16, limit: int = 4096) -> list[str]:
    """Classic offset / hex / ASCII lines, cut at ``limit`` bytes."""
    lines = []
    for offset in range(0, min(len(data), limit), width):
        chunk = data[offset : offset + width]
        hexes = " ".join(f"{b:02x}" for b in chunk)
        text = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        lines.append(f"{offset:06x}  {hexes:<{width * 3 - 1}}  {text}")
    if len(data) > limit:
        lines.append(f"… {len(data) - limit} more bytes")
    return lines
