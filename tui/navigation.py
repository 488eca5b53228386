"""Moving the timeline's selection: along links, through an OTA update, marks, search.

Every move goes through the timeline's public selection API and says in a
notification why it could not happen (not loaded yet, hidden by the filter, nothing
linked), so the keys never fail silently. The search lives here too: it is a
selection that moves to the next matching row.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Literal, Protocol

from proxy.core.filter import Filter, FilterError
from tui.view import session_messages

if TYPE_CHECKING:
    from proxy.core.analysis import Analysis
    from proxy.core.model import Message, OtaSession
    from tui.query import QueryBar
    from tui.widgets.timeline import Timeline

Severity = Literal["information", "warning", "error"]


class Notify(Protocol):
    """``App.notify``, the way the controllers call it."""

    def __call__(
        self,
        message: str,
        *,
        title: str = "",
        severity: Severity = "information",
        timeout: float | None = None,
    ) -> None: ...


def search_filter(text: str) -> Filter | None:
    """What a search box's text means: a filter expression, else plain text to find."""
    if not text.strip():
        return None
    try:
        return Filter.parse(text)
    except FilterError:
        return Filter.parse(json.dumps(text))  # not an expression: plain text


class Navigator:
    """The selection moves behind the jump, session, mark and search keys."""

    def __init__(self, analysis: Analysis, timeline: Timeline, notify: Notify) -> None:
        self.analysis = analysis
        self.timeline = timeline
        self.notify = notify
        self._search: Filter | None = None
        self._origin = 0  # where the search being typed began

    @property
    def search(self) -> Filter | None:
        """The search n/N repeat; None before one is typed (or after it is emptied)."""
        return self._search

    # -- helpers ----------------------------------------------------------------------

    def need_message(self) -> Message | None:
        """The selected message, or None after telling the user to select one."""
        msg = self.timeline.current_message
        if msg is None:
            self.notify("Select a message first", severity="warning")
        return msg

    def go_to_message(self, msg_id: int, what: str) -> None:
        """Select message ``msg_id``, or say why it is not on show."""
        ri = self.timeline.message_rows.row_of(msg_id)
        if ri is None:
            self.notify(f"{what} (#{msg_id}) is not loaded yet", severity="warning")
        elif not self.timeline.select_row_index(ri):
            self.notify(
                f"{what} (#{msg_id}) is hidden by the filter; Esc clears it",
                severity="warning",
            )

    # -- links and OTA updates ---------------------------------------------------------

    def jump_reply(self) -> None:
        msg = self.need_message()
        if msg is None:
            return
        for link in self.analysis.links_of(msg.id):
            if link.relation in ("response", "ota-ack"):
                if link.src == msg.id:
                    self.go_to_message(link.dst, "The reply")
                else:
                    self.go_to_message(link.src, "The request")
                return
        self.notify(f"#{msg.id} has no linked request or reply", severity="warning")

    def need_session(self) -> tuple[Message, OtaSession] | None:
        """The selected message and its OTA update; None (said so) when there is none."""
        msg = self.need_message()
        if msg is None:
            return None
        session = self.analysis.session_of(msg.id)
        if session is None:
            self.notify(f"#{msg.id} belongs to no OTA update", severity="warning")
            return None
        return msg, session

    def jump_ota_request(self) -> None:
        found = self.need_session()
        if found is None:
            return
        session = found[1]
        if session.request is None:
            self.notify("This update's cb21 request is not in the capture", severity="warning")
        else:
            self.go_to_message(session.request, "The OTA request")

    def session_step(self, forward: bool) -> None:
        """The next (or previous) message of the selected message's OTA update."""
        found = self.need_session()
        if found is None:
            return
        msg, session = found
        ids = sorted(session_messages(session))
        candidates = [i for i in ids if i > msg.id] if forward else [i for i in ids if i < msg.id]
        if not candidates:
            self.notify("No more messages in this update", severity="information", timeout=2)
            return
        self.go_to_message(candidates[0] if forward else candidates[-1], "That message")

    # -- marks ----------------------------------------------------------------------------

    def toggle_mark(self) -> None:
        marked = self.timeline.toggle_mark()
        if marked is not None:
            self.notify("Marked" if marked else "Mark removed", timeout=1.5)

    def mark_step(self, forward: bool) -> None:
        """The next (or previous) mark on show, wrapping around."""
        tl = self.timeline
        current = tl.current_row_index
        marks = sorted(m for m in tl.marks if tl.view.position_of(m) is not None)
        if not marks:
            self.notify("No marks on show (m marks a row)", severity="warning")
            return
        after = [m for m in marks if m > current] if forward else [m for m in marks if m < current]
        target = (after[0] if forward else after[-1]) if after else marks[0 if forward else -1]
        tl.select_row_index(target)

    # -- search ---------------------------------------------------------------------------

    def begin_search(self) -> None:
        """The search box opens: what is typed is found from the selection on."""
        self._origin = self.timeline.cursor

    def search_for(self, text: str, budget: float) -> None:
        """Search as the user types, for at most ``budget`` seconds a key."""
        self._search = search_filter(text)
        if self._search is not None:
            self.find(forward=True, start=self._origin, budget=budget)

    def search_step(self, forward: bool) -> bool:
        """Repeat the search from the selection; False when there is none to repeat."""
        if self._search is None:
            return False
        self.find(forward=forward, start=self.timeline.cursor + (1 if forward else -1))
        return True

    def find(self, forward: bool, start: int, budget: float | None = None) -> bool:
        """Select the first row on show from position ``start`` that the search matches.

        With a ``budget`` (seconds) a search while typing gives up quietly rather than
        hold the keyboard on a big capture; without one it says when nothing matches.
        """
        search = self._search
        tl = self.timeline
        view = tl.view
        total = len(view)
        if search is None or not total:
            return False
        rows = self.analysis.rows
        messages = self.analysis.messages
        deadline = None if budget is None else time.perf_counter() + budget
        step = 1 if forward else -1
        pos = start
        for count in range(total):
            pos = (start + step * count) % total
            row = rows[view.row_index(pos)]
            msg = messages[row.ref] if row.ref >= 0 else None
            if search(row, msg, tl.text_of):
                tl.move_to(pos, center=True)
                return True
            if deadline is not None and count % 1024 == 0 and time.perf_counter() > deadline:
                return False
        self.notify(f"No row matches {search.expression!r}", severity="warning", timeout=2)
        return False


class NavigationActions:
    """The navigation and search commands of :mod:`tui.commands` as actions of the app
    that mixes this in (Textual looks an action up on the app by its name). A step
    forward or back is one action with its direction as the parameter
    (``session_step(True)``), as Textual passes an action string's arguments."""

    navigation: Navigator
    query_bar: QueryBar

    def action_search(self) -> None:
        search = self.navigation.search
        self.navigation.begin_search()
        self.query_bar.open("search", search.expression if search else "")

    def action_search_step(self, forward: bool) -> None:
        if not self.navigation.search_step(forward=forward):
            self.action_search()  # nothing to repeat yet: ask for a search

    def action_jump_reply(self) -> None:
        self.navigation.jump_reply()

    def action_jump_ota_request(self) -> None:
        self.navigation.jump_ota_request()

    def action_session_step(self, forward: bool) -> None:
        self.navigation.session_step(forward)

    def action_toggle_mark(self) -> None:
        self.navigation.toggle_mark()

    def action_mark_step(self, forward: bool) -> None:
        self.navigation.mark_step(forward)
