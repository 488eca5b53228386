"""Everything known about the selected row: fields, annotations, links, JSON, bytes."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from rich.console import Group, RenderableType
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text
from textual.containers import VerticalScroll
from textual.widgets import Static

from proxy.core.model import Message, OtaSession
from tui import describe

if TYPE_CHECKING:
    from proxy.core.analysis import Analysis

HEADING = "bold underline"


class DetailPane(VerticalScroll, can_focus=True):
    """The selected message, explained; scrolls on its own."""

    ALLOW_MAXIMIZE = True

    DEFAULT_CSS = """
    DetailPane { background: $surface; scrollbar-size-vertical: 1; }
    DetailPane > Static { width: 1fr; height: auto; }
    """

    def __init__(self, analysis: Analysis, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.analysis = analysis
        self.row_index = -1
        self._body = Static("", id="detail-body")
        self.border_title = "Detail"

    @property
    def body(self) -> Static:
        """The widget holding what the pane shows (read it to see the text)."""
        return self._body

    def compose(self):  # type: ignore[no-untyped-def]
        yield self._body

    def show(self, row_index: int) -> None:
        self.row_index = row_index
        self._body.update(self.render_row(row_index))
        self.scroll_home(animate=False)

    def render_row(self, row_index: int) -> RenderableType:
        analysis = self.analysis
        if not 0 <= row_index < len(analysis.rows):
            return Text("Nothing selected.", style="dim")
        row = analysis.rows[row_index]
        if row.ref < 0:
            conn = analysis.connections.get(row.conn)
            text = Text()
            text.append(f"Connection {row.conn}\n", style="bold")
            if conn is None:
                text.append(describe.connection_text(row, conn))
            else:
                text.append(f"{conn.transport} app {conn.app} ⇄ outlet {conn.outlet}")
                start = analysis.rows[0].t
                text.append(f"\nopened at {conn.opened - start:.3f} s")
                if conn.closed is not None:
                    text.append(f", closed at {conn.closed - start:.3f} s")
                    text.append(f" by {conn.closed_by or 'unknown'}")
                if conn.error:
                    text.append("\nerror: ", style="bold")
                    text.append(conn.error)  # verbatim: the timeline shows it in short
            return text
        return self.render_message(analysis.messages[row.ref])

    def render_message(self, msg: Message) -> RenderableType:
        analysis = self.analysis
        parts: list[RenderableType] = []
        head = Text()
        head.append(f"#{msg.id} ", style="bold")
        head.append(f"{msg.kind} ", style="bold")
        if msg.callback is not None:
            head.append(f"cb{msg.callback} {msg.name}", style="bold")
        head.append(
            f"\n{msg.conn} {msg.transport} {describe.ARROW_MEANING[msg.side]}"
            f"  at {msg.t - analysis.rows[0].t:.3f} s"
        )
        if msg.injected:
            head.append("  (injected by the user)", style="italic")
        parts.append(head)

        done = describe.intervention_lines(msg)
        if done:
            parts.append(Text("\nIntervention", style=HEADING))
            for label, text in done:
                line = Text()
                if label:
                    line.append(f"{label}: ", style="bold")
                line.append(text)
                parts.append(line)

        table = Table.grid(padding=(0, 1))
        table.add_column(style="bold", no_wrap=True)
        table.add_column()
        table.add_column(style="dim")
        for name, value, meaning in describe.fields(msg):
            table.add_row(name, value, meaning)
        parts += [Text("\nFields", style=HEADING), table]

        if msg.annotations:
            parts.append(Text("\nAnnotations", style=HEADING))
            for ann in msg.annotations:
                line = Text()
                glyph = describe.SEVERITY_GLYPHS[ann.severity]
                color = {"error": "red", "warning": "yellow", "info": "cyan"}[ann.severity]
                line.append(f"{glyph} {ann.code}", style=f"bold {color}")
                line.append(f" ({ann.severity}): {ann.text}")
                parts.append(line)

        links = analysis.links_of(msg.id)
        if links:
            parts.append(Text("\nLinks", style=HEADING))
            for link in links:
                other = link.dst if link.src == msg.id else link.src
                direction = "→" if link.src == msg.id else "←"
                glyph = describe.RELATION_GLYPHS.get(link.relation, "?")
                other_msg = analysis.messages[other]
                line = Text()
                line.append(f"{glyph} {link.relation} {direction} #{other}", style="bold")
                line.append(f" ({other_msg.conn} cb{other_msg.callback} {other_msg.name})")
                line.append(f"\n    {link.reason}", style="dim")
                parts.append(line)

        session = analysis.session_of(msg.id)
        if session is not None:
            analysis.app_view()  # the session's app_outcome, when an intervention made one
            parts.append(Text("\nOTA session", style=HEADING))
            parts.append(Text(session_line(session)))
            if session.reason:
                parts.append(Text(f"    {session.reason}", style="dim"))
            if session.app_reason:
                parts.append(Text(f"    the app saw: {session.app_reason}", style="dim"))

        parts.append(Text("\nJSON", style=HEADING))
        if msg.kind == "invalid":
            parts.append(Text("(not valid JSON; raw bytes below)", style="dim"))
        else:
            try:
                value = json.loads(msg.raw)
                pretty = json.dumps(value, indent=2, ensure_ascii=False)
                parts.append(Syntax(pretty, "json", theme="ansi_dark", word_wrap=True))
            except (ValueError, UnicodeDecodeError):
                parts.append(Text(describe.raw_text(msg, 2000)))
        parts.append(Text(f"\nRaw bytes ({len(msg.raw)})", style=HEADING))
        if msg.kind == "invalid" or not _printable(msg.raw):
            parts.append(Text("\n".join(describe.hexdump(msg.raw))))
        else:
            parts.append(Text(describe.raw_text(msg, 4000)))
        return Group(*parts)


def _printable(data: bytes) -> bool:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return all(c.isprintable() or c in "\n\r\t" for c in text)


def session_line(session: OtaSession) -> str:
    """One line naming an update: target, method, outcome, firmware."""
    method = f", method {session.method}" if session.method else ""
    fw = f"  {session.fw_before or '?'} → {session.fw_after or session.fw_expected or '?'}"
    mark = {True: " ✓", False: " ✗", None: ""}[session.verified]
    request = f"request #{session.request}" if session.request is not None else "no request seen"
    saw = ""
    if session.app_outcome is not None and session.app_outcome != session.outcome:
        saw = f" (app saw: {session.app_outcome})"
    return f"{session.target}{method}: {session.outcome}{saw} ({request}){fw}{mark}"
