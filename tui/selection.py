"""What follows the timeline's selection: the rows related to it and the detail pane.

The related rows (reply, request, the OTA update's messages) are marked at once, as
the cursor moves; the detail pane, costlier to draw, catches up once key repeat pauses
and otherwise redraws only when what it shows of the selected message changed.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from tui import describe

if TYPE_CHECKING:
    from proxy.core.analysis import Analysis
    from proxy.core.model import Message
    from tui.widgets.detail import DetailPane
    from tui.widgets.timeline import Timeline

DETAIL_DELAY = 0.08  # the detail follows the cursor once key repeat pauses (next tick)


def related_rows(analysis: Analysis, msg: Message | None) -> tuple[dict[int, str], frozenset[int]]:
    """The glyph of each message linked to ``msg`` (itself: "▶"), and its OTA update's
    messages."""
    related: dict[int, str] = {}
    session_ids: frozenset[int] = frozenset()
    if msg is not None:
        for link in analysis.links_of(msg.id):
            other = link.dst if link.src == msg.id else link.src
            related[other] = describe.RELATION_GLYPHS.get(link.relation, "?")
        related[msg.id] = "▶"
        session = analysis.session_of(msg.id)
        if session is not None:
            session_ids = frozenset(session.messages)
    return related, session_ids


class DetailSync:
    """Keeps the detail pane on the timeline's selected row, without a timer per key."""

    def __init__(self, analysis: Analysis, timeline: Timeline, detail: DetailPane) -> None:
        self.analysis = analysis
        self.timeline = timeline
        self.detail = detail
        self._shown: object = None  # what the pane shows, as compared by ``refresh``
        self._due: float | None = None  # when the pane catches up with the cursor

    def cursor_moved(self) -> None:
        """Mark the related rows; the pane follows on the first tick after the delay."""
        tl = self.timeline
        tl.set_related(*related_rows(self.analysis, tl.current_message))
        # A deadline the clock checks: no Timer (a task) started and cancelled per key.
        self._due = time.perf_counter() + DETAIL_DELAY

    def show_if_due(self) -> None:
        """On the clock: draw the pane once the cursor has rested."""
        due = self._due
        if due is not None and time.perf_counter() >= due:
            self._due = None
            self.refresh(force=True)

    def refresh(self, force: bool) -> None:
        """Redraw the pane when forced or when the selected message gained something
        (annotations, links, its update's outcome) as the analysis went on."""
        if not self.detail.display:
            self._shown = None  # rendered when shown
            return
        ri = self.timeline.current_row_index
        msg = self.timeline.current_message
        shown: object = (ri,)
        if msg is not None:
            session = self.analysis.session_of(msg.id)
            shown = (
                ri,
                msg.kind,
                msg.name,
                len(msg.annotations),
                len(self.analysis.links_of(msg.id)),
                None if session is None else (session.outcome, session.verified),
            )
        if force or shown != self._shown:
            self._shown = shown
            self.detail.show(ri)
