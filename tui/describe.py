"""How a message reads on screen: its one-line summary, its fields, glyphs and time text.

The decoder (``proxy.protocol``) owns the meaning of a message; this module only asks it
and guards the screen against a decoder that fails on odd input (DESIGN 1.3: analysis
may fail, the view must not).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any, Final, Literal

from proxy.model import Connection, Message, Row

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
SESSION_GLYPH: Final = "┊"
MARK_GLYPH: Final = "★"
SEVERITY_GLYPHS: Final = {"error": "✖", "warning": "▲", "info": "●"}
SEVERITY_RANK: Final = {"info": 0, "warning": 1, "error": 2}


def _load_decoder() -> tuple[Callable[[Message], str] | None, Callable[[Message], Any] | None]:
    try:
        from proxy import protocol
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
    text = msg.raw.decode("utf-8", "replace").replace("\n", "⏎").replace("\r", "␍")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def worst_severity(msg: Message) -> str | None:
    worst: str | None = None
    for ann in msg.annotations:
        if worst is None or SEVERITY_RANK[ann.severity] > SEVERITY_RANK[worst]:
            worst = ann.severity
    return worst


def connection_text(row: Row, conn: Connection | None) -> str:
    """The summary of a connection open/close row."""
    if conn is None:
        return f"connection {row.conn} {'opened' if row.kind == 'open' else 'closed'}"
    if row.kind == "open":
        return f"open {conn.transport} app {conn.app} ⇄ outlet {conn.outlet}"
    who = f" by {conn.closed_by}" if conn.closed_by else ""
    err = f" ({conn.error})" if conn.error else ""
    lifetime = conn.closed - conn.opened if conn.closed is not None else None
    life = f" after {lifetime:.3f}s" if lifetime is not None else ""
    return f"closed{who}{life}{err}"


def time_text(mode: TimeMode, t: float, start: float, previous: float | None) -> str:
    if mode == "absolute":
        whole = time.strftime("%H:%M:%S", time.localtime(t))
        return f"{whole}.{int((t % 1) * 1000):03d}"
    if mode == "delta":
        return f"Δ{t - (previous if previous is not None else t):.3f}"
    return f"{t - start:.3f}"


def message_json(msg: Message) -> dict[str, Any]:
    """One message in the ``analyze --json`` shape (DESIGN 4.4)."""
    return {
        "id": msg.id,
        "t": msg.t,
        "conn": msg.conn,
        "transport": msg.transport,
        "from": msg.side,
        "kind": msg.kind,
        "callback": msg.callback,
        "name": msg.name,
        "packetID": msg.packet_id,
        "sn": msg.sn,
        "puback": msg.puback,
        "args": msg.args,
        "annotations": [
            {"code": a.code, "severity": a.severity, "text": a.text} for a in msg.annotations
        ],
    }


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
