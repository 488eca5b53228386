"""Plain-text rendering of an analysis: the timeline and the OTA summary.

Shared by ``analyze``, ``run --headless`` and ``demo --headless`` so that every text
view of the traffic reads the same.
"""

from __future__ import annotations

from collections.abc import Iterator

from proxy.core import protocol
from proxy.core.analysis import Analysis, fmt_t
from proxy.core.events import column_label
from proxy.core.model import Message, OtaSession, Row, intervention_text

ARROWS = {"app": "app→outlet", "outlet": "outlet→app"}
SEVERITY_MARK = {"info": "i", "warning": "!", "error": "✗"}


def t_label(analysis: Analysis, t: float) -> str:
    """The time column: wall clock (local time) for recordings, seconds for synthetic traces.

    The same clock as the reasons the analysis writes, so "requested at ..." can be
    found in the column. Total, like every time formatting (:mod:`proxy.core.events`).
    """
    return column_label(t)


def format_row(analysis: Analysis, row: Row) -> list[str]:
    """The lines for one timeline row: the row itself, then its links and annotations."""
    if row.kind == "message":
        return format_message(analysis, analysis.messages[row.ref])
    info = analysis.connections.get(row.conn)
    when = t_label(analysis, row.t)
    if row.kind == "open":
        if info is None:
            return [f"{when}  {row.conn:<4} ── open"]
        return [
            f"{when}  {row.conn:<4} ── open {info.transport} app {info.app} ⇄ outlet {info.outlet}"
        ]
    by = f" by {info.closed_by}" if info is not None and info.closed_by else ""
    err = f" ({info.error})" if info is not None and info.error else ""
    return [f"{when}  {row.conn:<4} ── close{by}{err}"]


def message_head(msg: Message) -> str:
    cb = f"cb{msg.callback}" if msg.callback is not None else "  - "
    pid = "" if msg.packet_id is None else f"pid {msg.packet_id}"
    return f"#{msg.id:<5} {ARROWS[msg.side]:<10} {msg.kind:<8} {cb:<5} {pid:<10}"


def format_message(analysis: Analysis, msg: Message) -> list[str]:
    when = t_label(analysis, msg.t)
    lines = [f"{when}  {msg.conn:<4} {message_head(msg)} {protocol.summary(msg)}"]
    pad = " " * 17
    if msg.intervention is not None:
        lines.append(f"{pad}⚑ {intervention_text(msg)}")
        if msg.forwarded is not None:
            lines.append(f"{pad}  forwarded instead: {_shown(msg.forwarded)}")
    for link in analysis.links_of(msg.id):
        if link.dst == msg.id:
            lines.append(f"{pad}↖ {link.relation} of #{link.src}: {link.reason}")
    for ann in msg.annotations:
        mark = SEVERITY_MARK.get(ann.severity, "?")
        lines.append(f"{pad}{mark} {ann.code}: {ann.text}")
    return lines


def _shown(raw: bytes, limit: int = 160) -> str:
    """Bytes as one line of text, cut at ``limit`` characters."""
    text = raw.decode("utf-8", "replace").strip().replace("\n", "\\n")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def format_late_annotation(analysis: Analysis, msg_id: int, index: int) -> str:
    """A remark that came after its message was shown ("#4 + ota-restart: ...")."""
    msg = analysis.messages[msg_id]
    ann = msg.annotations[index]
    mark = SEVERITY_MARK.get(ann.severity, "?")
    when = t_label(analysis, analysis.last_t or msg.t)
    return f"{when}  {msg.conn:<4} #{msg.id} + {mark} {ann.code}: {ann.text}"


def timeline(analysis: Analysis) -> Iterator[str]:
    for row in analysis.rows:
        yield from format_row(analysis, row)


def progress_text(session: OtaSession) -> str:
    parts = []
    for device_type, label in ((3, "WWW"), (1, "main"), (2, "deco")):
        series = [pct for _, dt, pct in session.progress if dt == device_type]
        if series:
            parts.append(f"{label} {series[0]}→{series[-1]} % ({plural(len(series), 'update')})")
    return ", ".join(parts) or "no progress reported"


def format_session(analysis: Analysis, index: int, session: OtaSession) -> list[str]:
    origin = (
        f"requested by #{session.request} at {fmt_t(session.started)}"
        if session.request is not None
        else "request not in the capture"
    )
    method = f", method {session.method}" if session.method else ""
    saw = f" (app saw: {session.app_outcome.upper()})" if session.app_outcome else ""
    lines = [
        f"OTA {index + 1}: {session.target} update{method}, {origin}: "
        f"{session.outcome.upper()}{saw}"
    ]
    mark = {True: "verified ✓", False: "MISMATCH ✗", None: "not verified"}[session.verified]
    lines.append(
        f"    firmware {session.fw_before or '?'} → {session.fw_after or '?'} "
        f"(expected {session.fw_expected or '?'}): {mark}"
    )
    lines.append(f"    progress: {progress_text(session)}")
    lines.append(f"    messages: {', '.join(f'#{i}' for i in session.messages)}")
    lines.append(f"    why: {session.reason}")
    if session.app_reason:
        lines.append(f"    the app saw: {session.app_reason}")
    return lines


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def summary(analysis: Analysis) -> Iterator[str]:
    analysis.app_view()  # the sessions' app_outcome, when interventions made one
    counts = analysis.counts()
    n_inv = counts.invalid
    yield (
        f"{plural(counts.messages, 'message')} on "
        f"{plural(counts.connections, 'connection')}, "
        f"{plural(counts.links, 'link')}, {plural(counts.sessions, 'OTA update')}"
        + (f", {plural(n_inv, 'invalid frame')}" if n_inv else "")
    )
    if not counts.sessions:
        yield "No OTA update in this capture."
    numbered = analysis.numbered_sessions()
    if len(numbered) < counts.sessions:
        yield (
            f"{plural(counts.sessions - len(numbered), 'earlier finished OTA update')} not "
            "listed (a long-running headless proxy keeps the latest ones; `invisproxy "
            "analyze` on the capture lists them all)"
        )
    for number, session in numbered:
        yield from format_session(analysis, number - 1, session)
