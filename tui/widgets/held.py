"""The held strip: messages the intercept filter holds, oldest first, under the timeline.

A held message is not on the analysis yet (it is recorded when it is forwarded or
dropped, DESIGN 4.1), so it cannot be a timeline row: it waits here, marked ⏸, until
``a`` forwards it, ``e`` edits it, ``x`` drops it or ``A`` lets every one go. The
strip is hidden while nothing is held.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from tui import describe
from tui.sources import HeldMessage

HELD_GLYPH = "⏸"


def held_line(held: HeldMessage, now: float) -> Text:
    """One held message as the strip shows it."""
    line = Text(f"{HELD_GLYPH} HELD #{held.id} ", style="bold")
    line.append(f"{held.conn} {held.side} {describe.ARROWS[held.side]} ")
    msg = held.decision.message
    if msg is not None and msg.callback is not None:
        line.append(f"cb{msg.callback} {msg.name} ")
        if msg.packet_id is not None:
            line.append(f"pid {msg.packet_id} ", style="dim")
    else:
        line.append(held.text[:60] + " ", style="dim")
    line.append(f"· {max(now - held.since, 0.0):.1f} s", style="dim")
    return line


class HeldPanel(OptionList):
    """The held messages; the highlighted one is what a, e and x act on."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.held: list[HeldMessage] = []

    def show(self, held: Sequence[HeldMessage], now: float) -> None:
        """Show these held messages, keeping the highlight on the same one if it stays."""
        chosen = self.chosen
        self.held = list(held)
        self.clear_options()
        self.add_options(Option(held_line(h, now), id=str(h.id)) for h in self.held)
        self.border_title = (
            f"{HELD_GLYPH} {len(self.held)} held · a forward · e edit · x drop · A all"
        )
        self.display = bool(self.held)
        if self.held:
            ids = [h.id for h in self.held]
            keep = chosen is not None and chosen.id in ids
            self.highlighted = ids.index(chosen.id) if chosen is not None and keep else 0

    @property
    def chosen(self) -> HeldMessage | None:
        """The highlighted held message (the oldest unless the user moved)."""
        index = self.highlighted
        if index is None or not 0 <= index < len(self.held):
            return None
        return self.held[index]
