"""The help screen: every key, what the glyphs mean, and the filter syntax."""

from __future__ import annotations

from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from proxy.core.filter import help_text
from tui import describe


class HelpScreen(ModalScreen[None]):
    """Shown over the timeline; any of Esc, q or ? closes it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,question_mark", "dismiss", "Close help"),
    ]

    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll {
        width: 90%; max-width: 100; height: 90%;
        border: round $primary; background: $surface; padding: 0 1;
    }
    HelpScreen Static { width: 1fr; }
    """

    def __init__(self, keys: list[tuple[str, str, str]]) -> None:
        super().__init__()
        self.keys = keys

    def compose(self) -> ComposeResult:
        with VerticalScroll() as scroll:
            scroll.border_title = "Help — Esc closes"
            yield Static(self._keys_table())
            yield Static(self._legend())
            yield Static(Text("\nFilter and search\n", style="bold") + Text(help_text()))

    def _keys_table(self) -> Table:
        table = Table(
            title="Keys (every command is also in the palette: Ctrl+P)",
            title_justify="left",
            title_style="bold",
            box=None,
            padding=(0, 1),
            expand=True,
        )
        key_width = max(len(k) for k, _, _ in self.keys)
        title_width = max(len(t) for _, t, _ in self.keys)
        table.add_column("key", style="bold", no_wrap=True, width=key_width)
        table.add_column("command", no_wrap=True, width=title_width)
        table.add_column("what it does", style="dim", ratio=1)
        for key, title, help_ in self.keys:
            table.add_row(key, title, help_)
        return table

    def _legend(self) -> Text:
        text = Text("\nTimeline columns\n", style="bold")
        text.append(
            "gutter (mark, link) · time · severity · connection · direction · transport"
            " · callback · packetID · summary\n"
        )
        text.append(
            f"  {describe.ARROWS['app']} app → outlet   {describe.ARROWS['outlet']}"
            " outlet → app   ┌ connection opened   └ connection closed\n"
        )
        sev = "   ".join(f"{g} {s}" for s, g in describe.SEVERITY_GLYPHS.items())
        text.append(f"  {sev}   {describe.MARK_GLYPH} marked row\n")
        text.append("\nLinks of the selected message (▶) shown in the gutter\n", style="bold")
        for relation, glyph in describe.RELATION_GLYPHS.items():
            text.append(f"  {glyph}  {relation}\n")
        text.append(f"  {describe.SESSION_GLYPH}  same OTA update, not linked directly\n")
        text.append(
            "\nTime modes (t): seconds since the first row · Δ delta from the row above"
            " · wall clock\n"
        )
        return text
