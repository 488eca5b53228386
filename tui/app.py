"""The invisproxy TUI: timeline, detail, OTA panel, filter and search over one analysis.

Events arrive from a :class:`~tui.sources.Source` into the app's
:class:`~tui.feeder.Feeder`, which analyses them in slices of bounded time. The screen
catches up on a timer, a few times a second, so hundreds of events per second cost a
few repaints. ``feeder.loaded`` is set once a finite source is all on the analysis.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from textual import events, on
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, Input, Static

from proxy.core.analysis.schema import message_json
from proxy.core.events import Data
from proxy.core.filter import Filter, FilterError
from tui import commands, describe
from tui.feeder import Feeder
from tui.sources import PlaySource, Source
from tui.view import RowView
from tui.widgets.detail import DetailPane
from tui.widgets.help import HelpScreen
from tui.widgets.ota import OtaPanel
from tui.widgets.timeline import Timeline

if TYPE_CHECKING:
    from proxy.core.analysis import Analysis
    from proxy.core.model import Message

TICK = 1 / 20  # repaint at most this often
VIEW_BUDGET = 0.015  # seconds of filtering per tick
SEARCH_BUDGET = 0.25
PANEL_EVERY = 5  # ticks between side-panel refreshes while loading
DETAIL_DELAY = 0.08  # the detail follows the cursor once key repeat pauses (next tick)
WIDE = 120  # columns from which the detail sits beside the timeline
# Below WIDE the panes stack; on a screen shorter than this the detail starts hidden
# (d shows it) so the timeline keeps most of the rows: with the tags on each row it
# says what matters, and the detail is a key away.
DETAIL_MIN_HEIGHT = 36


class InvisApp(App[None]):
    """Shows one analysis, fed by one source."""

    CSS_PATH = "invisproxy.tcss"
    TITLE = "invisproxy"
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (WIDE, "-wide")]  # noqa: RUF012

    BINDINGS: ClassVar[list[BindingType]] = list(commands.bindings())

    def __init__(
        self,
        source: Source,
        *,
        title: str | None = None,
        analysis: Analysis | None = None,
        stall_window: float | None = None,
        export_dir: Path | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__()
        if analysis is None:
            from proxy.core.analysis import Analysis

            analysis = Analysis() if stall_window is None else Analysis(stall_window=stall_window)
        self.analysis = analysis
        self.source = source
        self.sub_title = title or source.label
        self.export_dir = export_dir or Path.cwd()
        self.clock = clock
        self.feeder = Feeder(
            analysis, streaming=source.streaming, on_problems=self._notify_problems
        )
        self._feed_task: asyncio.Task[None] | None = None
        self._generation = -1
        self._last_advance = 0.0
        self._filter = Filter.parse("")
        self._session: int | None = None
        self._search: Filter | None = None
        self._query_mode: Literal["filter", "search"] | None = None
        self._detail_sig: object = None
        self._detail_auto = True  # shown or hidden by the screen size until the user says
        self._detail_due: float | None = None  # when the detail catches up with the cursor
        self._status_text = ""
        self._ticks = 0
        # Copies and exports leave the tool: credentials stay out unless asked for.
        self.redacting = True
        self.timeline = Timeline(analysis, id="timeline")
        self.timeline.following = source.streaming
        self.detail = DetailPane(analysis, id="detail")
        self.ota = OtaPanel(analysis, id="ota")
        self.status = Static(id="status")

    # -- layout -----------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield self.status
        with Horizontal(id="main"):
            yield self.timeline
            with Vertical(id="side"):
                yield self.ota
                yield self.detail
        yield Static(id="query-error")
        yield Input(id="query")
        yield Footer()

    def on_mount(self) -> None:
        self.timeline.focus()
        self.timeline.border_title = "Timeline"
        self.query_one("#query", Input).display = False
        self.query_one("#query-error", Static).display = False
        self.ota.display = False
        self._fit_detail()
        self._feed_task = asyncio.get_running_loop().create_task(self._feed_loop())
        self.set_interval(TICK, self._tick)
        self.source.start(self.feeder)
        self._update_status()

    async def on_unmount(self) -> None:
        if self._feed_task is not None:
            self._feed_task.cancel()
        await self.source.stop()

    async def on_event(self, event: events.Event) -> None:
        if isinstance(
            event, events.Key | events.MouseDown | events.MouseScrollDown | events.MouseScrollUp
        ):
            self.feeder.note_input()
        await super().on_event(event)

    # -- feeding and the clock ------------------------------------------------------

    def _notify_problems(self, problems: Sequence[str]) -> None:
        for problem in problems[:3]:
            self.notify(problem, title="Problem in the capture", severity="warning", timeout=8)
        if len(problems) > 3:
            self.notify(f"… and {len(problems) - 3} more problems", severity="warning")

    async def _feed_loop(self) -> None:
        """Run the feeder; an analysis error is shown as when the clock fed it."""
        try:
            await self.feeder.run(self._filling, self._after_slice)
        except Exception as error:
            self._handle_exception(error)

    def _filling(self) -> bool:
        return len(self.timeline.view) < 2 * self.timeline.size.height

    def _after_slice(self, first_screen: bool) -> None:
        if first_screen:
            self._tick()  # the first screen does not wait for the clock

    def _tick(self) -> None:
        self._show_detail_if_due()
        analysis = self.analysis
        feeder = self.feeder
        if not feeder.finish_if_done() and self.source.wall_clock and not feeder.finished:
            now = self.clock()
            if now - self._last_advance >= 1.0:
                self._last_advance = now
                analysis.advance(now)
        if analysis.generation != self._generation or not self.timeline.view.complete:
            self._generation = analysis.generation
            self._data_changed()

    def _data_changed(self) -> None:
        self.timeline.view.sync(VIEW_BUDGET)
        self._ticks += 1
        busy = bool(self.feeder.backlog) or not self.timeline.view.complete
        filling = len(self.timeline.view) < 2 * self.timeline.size.height
        if busy and not filling and self._ticks % PANEL_EVERY:
            # While a backlog loads, the screen (a relayout and repaint) catches up a few
            # times a second, leaving the loop to the analysis and the keyboard.
            return
        self.timeline.data_changed()
        if self.analysis.sessions and not self.ota.display:
            self.ota.display = True
        self.ota.data_changed()
        self._refresh_detail(force=False)
        self._update_status()

    def _update_status(self) -> None:
        analysis = self.analysis
        tl = self.timeline
        parts = [f"{len(analysis.messages):,} msgs"]
        if not tl.view.is_identity:
            shown = f"{len(tl.view):,} shown"
            if not tl.view.complete:
                shown += " (filtering…)"
            parts.append(shown)
        if not self._filter.is_empty:
            parts.append(f"filter: {self._filter.expression}")
        if self._session is not None:
            parts.append(f"OTA #{self._session + 1} only")
        if self.source.streaming:
            if tl.following:
                parts.append("● following")
            else:
                new = f" · {tl.new_rows:,} new" if tl.new_rows else ""
                parts.append(f"⏸ paused{new} (End/F)")
        parts.append(f"time: {tl.time_mode}")
        parts.append("redact: on" if self.redacting else "redact: OFF")
        feeder = self.feeder
        if feeder.progress:
            parts.append(feeder.progress + feeder.rate())
        elif feeder.finished and feeder.problems:
            parts.append(f"{len(feeder.problems)} problem(s) reading the file")
        text = " │ ".join(parts)
        if text != self._status_text:
            self._status_text = text
            self.status.update(text, layout=False)

    # -- selection ----------------------------------------------------------------

    @on(Timeline.CursorMoved)
    def _cursor_moved(self, event: Timeline.CursorMoved) -> None:
        msg = self.timeline.current_message
        related: dict[int, str] = {}
        session_ids: frozenset[int] = frozenset()
        if msg is not None:
            for link in self.analysis.links_of(msg.id):
                other = link.dst if link.src == msg.id else link.src
                related[other] = describe.RELATION_GLYPHS.get(link.relation, "?")
            related[msg.id] = "▶"
            session = self.analysis.session_of(msg.id)
            if session is not None:
                session_ids = frozenset(session.messages)
        self.timeline.set_related(related, session_ids)
        # A deadline the clock checks: no Timer (a task) started and cancelled per key.
        self._detail_due = time.perf_counter() + DETAIL_DELAY
        self._update_status()

    def _show_detail_if_due(self) -> None:
        due = self._detail_due
        if due is not None and time.perf_counter() >= due:
            self._detail_due = None
            self._refresh_detail(force=True)

    @on(Timeline.FollowChanged)
    def _follow_changed(self) -> None:
        self._update_status()

    def _refresh_detail(self, force: bool) -> None:
        if not self.detail.display:
            self._detail_sig = None  # rendered when shown
            return
        ri = self.timeline.current_row_index
        msg = self.timeline.current_message
        sig: object = (ri,)
        if msg is not None:
            session = self.analysis.session_of(msg.id)
            sig = (
                ri,
                msg.kind,
                msg.name,
                len(msg.annotations),
                len(self.analysis.links_of(msg.id)),
                None if session is None else (session.outcome, session.verified),
            )
        if force or sig != self._detail_sig:
            self._detail_sig = sig
            self.detail.show(ri)

    def _go_to_message(self, msg_id: int, what: str) -> None:
        ri = self.timeline.message_rows.row_of(msg_id)
        if ri is None:
            self.notify(f"{what} (#{msg_id}) is not loaded yet", severity="warning")
        elif not self.timeline.select_row_index(ri):
            self.notify(
                f"{what} (#{msg_id}) is hidden by the filter; Esc clears it",
                severity="warning",
            )

    def _need_message(self) -> Any:
        msg = self.timeline.current_message
        if msg is None:
            self.notify("Select a message first", severity="warning")
        return msg

    # -- actions ------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in commands.PLAYBACK_ACTIONS:
            return isinstance(self.source, PlaySource)
        return True

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(commands.help_rows(playing=self._player() is not None)))

    def action_time_mode(self) -> None:
        modes = describe.TIME_MODES
        mode = modes[(modes.index(self.timeline.time_mode) + 1) % len(modes)]
        self.timeline.set_time_mode(mode)
        self._update_status()
        self.notify(f"Time: {mode}", timeout=1.5)

    def action_follow(self) -> None:
        self.timeline.resume_follow()
        self._update_status()

    def action_jump_reply(self) -> None:
        msg = self._need_message()
        if msg is None:
            return
        for link in self.analysis.links_of(msg.id):
            if link.relation in ("response", "ota-ack"):
                if link.src == msg.id:
                    self._go_to_message(link.dst, "The reply")
                else:
                    self._go_to_message(link.src, "The request")
                return
        self.notify(f"#{msg.id} has no linked request or reply", severity="warning")

    def action_jump_ota_request(self) -> None:
        msg = self._need_message()
        if msg is None:
            return
        session = self.analysis.session_of(msg.id)
        if session is None:
            self.notify(f"#{msg.id} belongs to no OTA update", severity="warning")
        elif session.request is None:
            self.notify("This update's cb21 request is not in the capture", severity="warning")
        else:
            self._go_to_message(session.request, "The OTA request")

    def _session_step(self, forward: bool) -> None:
        msg = self._need_message()
        if msg is None:
            return
        session = self.analysis.session_of(msg.id)
        if session is None:
            self.notify(f"#{msg.id} belongs to no OTA update", severity="warning")
            return
        ids = sorted(set(session.messages))
        if session.request is not None and session.request not in ids:
            ids = sorted([*ids, session.request])
        candidates = [i for i in ids if i > msg.id] if forward else [i for i in ids if i < msg.id]
        if not candidates:
            self.notify("No more messages in this update", severity="information", timeout=2)
            return
        self._go_to_message(candidates[0] if forward else candidates[-1], "That message")

    def action_session_next(self) -> None:
        self._session_step(True)

    def action_session_previous(self) -> None:
        self._session_step(False)

    def action_toggle_mark(self) -> None:
        marked = self.timeline.toggle_mark()
        if marked is not None:
            self.notify("Marked" if marked else "Mark removed", timeout=1.5)

    def _mark_step(self, forward: bool) -> None:
        tl = self.timeline
        current = tl.current_row_index
        marks = sorted(m for m in tl.marks if tl.view.position_of(m) is not None)
        if not marks:
            self.notify("No marks on show (m marks a row)", severity="warning")
            return
        after = [m for m in marks if m > current] if forward else [m for m in marks if m < current]
        target = (after[0] if forward else after[-1]) if after else marks[0 if forward else -1]
        tl.select_row_index(target)

    def action_mark_next(self) -> None:
        self._mark_step(True)

    def action_mark_previous(self) -> None:
        self._mark_step(False)

    def action_copy(self) -> None:
        msg = self._need_message()
        if msg is None:
            return
        shown, removed = self._outgoing(msg)
        text = json.dumps(message_json(shown), ensure_ascii=False)
        # lone surrogates have no UTF-8 form; their escapes keep the JSON valid
        self.copy_to_clipboard(text.encode("utf-8", "backslashreplace").decode("utf-8"))
        note = f" ({len(removed)} credential(s) redacted)" if removed else ""
        self.notify(f"Copied message #{msg.id} as JSON{note}", timeout=2)

    def action_toggle_redact(self) -> None:
        self.redacting = not self.redacting
        if self.redacting:
            self.notify("Copies and exports hide credentials", title="Redaction on", timeout=3)
        else:
            self.notify(
                "Copies and exports now hold credentials as captured",
                title="Redaction off",
                severity="warning",
                timeout=4,
            )
        self._update_status()

    def _outgoing(self, msg: Message) -> tuple[Message, list[str]]:
        """The message as a copy or export shows it: redacted unless turned off."""
        if not self.redacting:
            return msg, []
        from proxy.store.redact import redact_message

        return redact_message(msg)

    def action_sessions(self) -> None:
        if not self.analysis.sessions:
            self.notify("No OTA updates in this capture (yet)", severity="warning")
            return
        self.ota.remove_class("hidden")
        self.ota.display = True
        if self.ota.highlighted is None:
            self.ota.highlighted = 0
        self.ota.focus()

    def action_toggle_detail(self) -> None:
        self._detail_auto = False
        self._show_detail(not self.detail.display)

    def _show_detail(self, show: bool) -> None:
        if show == self.detail.display:
            return
        self.detail.display = show
        self.query_one("#side").display = show or self.ota.display
        if show:
            self._refresh_detail(force=True)

    def on_resize(self, event: events.Resize) -> None:
        self._fit_detail()

    def _fit_detail(self) -> None:
        if self._detail_auto:
            width, height = self.size
            self._show_detail(width >= WIDE or height >= DETAIL_MIN_HEIGHT)

    def action_clear_filter(self) -> None:
        if self._query_mode is not None:
            self._close_query()
            return
        if self._filter.is_empty and self._session is None:
            return
        self._filter = Filter.parse("")
        self._session = None
        self._apply_view()
        self.notify("Showing all rows", timeout=1.5)

    def _apply_view(self) -> None:
        session_ids = None
        if self._session is not None:
            session = self.analysis.sessions[self._session]
            ids = set(session.messages)
            if session.request is not None:
                ids.add(session.request)
            session_ids = frozenset(ids)
        tl = self.timeline
        view = RowView(self.analysis.rows, self.analysis.messages, tl.text_of, self._filter)
        view.session = session_ids
        view.sync(VIEW_BUDGET * 4)
        tl.set_view(view)
        self._update_status()

    @on(OtaPanel.SessionChosen)
    def _session_chosen(self, event: OtaPanel.SessionChosen) -> None:
        self._session = event.index
        self._apply_view()
        self.timeline.focus()
        if event.index is not None:
            self.notify(f"Showing OTA update #{event.index + 1} only (Esc: all)", timeout=2)

    # -- filter and search --------------------------------------------------------

    def action_filter(self) -> None:
        self._open_query("filter", self._filter.expression)

    def action_search(self) -> None:
        self._open_query("search", self._search.expression if self._search else "")

    def _open_query(self, mode: Literal["filter", "search"], value: str) -> None:
        self._query_mode = mode
        query = self.query_one("#query", Input)
        query.placeholder = (
            "filter: cb:21-23 and not kind:push · ann:spurious-ota-result · conn:c2 or pid:1"
            if mode == "filter"
            else "search: text or filter terms; Enter keeps it, n/N for next/previous"
        )
        query.border_title = "Filter" if mode == "filter" else "Search"
        query.value = value
        query.display = True
        query.focus()
        self._search_origin = self.timeline.cursor

    def _close_query(self) -> None:
        self._query_mode = None
        self.query_one("#query", Input).display = False
        self.query_one("#query-error", Static).display = False
        self.timeline.focus()

    def _show_query_error(self, error: FilterError | None) -> None:
        label = self.query_one("#query-error", Static)
        if error is None:
            label.display = False
        else:
            label.update(f"✖ {error}")
            label.display = True

    @on(Input.Changed, "#query")
    def _query_changed(self, event: Input.Changed) -> None:
        if self._query_mode == "filter":
            try:
                Filter.parse(event.value)
            except FilterError as exc:
                self._show_query_error(exc)
            else:
                self._show_query_error(None)
        elif self._query_mode == "search":
            self._search = self._search_filter(event.value)
            if self._search is not None:
                self._find(forward=True, start=self._search_origin, budget=SEARCH_BUDGET)

    @on(Input.Submitted, "#query")
    def _query_submitted(self, event: Input.Submitted) -> None:
        if self._query_mode == "filter":
            try:
                flt = Filter.parse(event.value)
            except FilterError as exc:
                self._show_query_error(exc)
                return
            self._filter = flt
            self._close_query()
            self._apply_view()
        else:
            self._close_query()

    def _search_filter(self, text: str) -> Filter | None:
        if not text.strip():
            return None
        try:
            return Filter.parse(text)
        except FilterError:
            return Filter.parse(json.dumps(text))  # not an expression: plain text

    def _find(self, forward: bool, start: int, budget: float | None = None) -> bool:
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

    def action_search_next(self) -> None:
        if self._search is None:
            self.action_search()
            return
        self._find(forward=True, start=self.timeline.cursor + 1)

    def action_search_previous(self) -> None:
        if self._search is None:
            self.action_search()
            return
        self._find(forward=False, start=self.timeline.cursor - 1)

    # -- export -------------------------------------------------------------------

    def _visible_rows(self) -> Iterable[int]:
        view = self.timeline.view
        return (view.row_index(p) for p in range(len(view)))

    def _export_path(self, suffix: str) -> Path:
        stem = Path(self.source.label.split(" ")[0]).stem or "invisproxy"
        n = 1
        while (path := self.export_dir / f"{stem}-export-{n}{suffix}").exists():
            n += 1
        return path

    def action_export(self) -> None:
        analysis = self.analysis
        ids: list[int] = []
        conns: list[dict[str, Any]] = []
        for ri in self._visible_rows():
            row = analysis.rows[ri]
            if row.ref >= 0:
                ids.append(row.ref)
            else:
                conns.append({"t": row.t, "conn": row.conn, "event": row.kind})
        shown = set(ids)
        messages = []
        redacted = 0
        for i in ids:
            msg, removed = self._outgoing(analysis.messages[i])
            redacted += len(removed)
            messages.append(message_json(msg))
        document = {
            "version": 1,
            "source": self.source.label,
            "filter": self._filter.expression,
            "ota_session": None if self._session is None else self._session + 1,
            "redacted": self.redacting,
            "messages": messages,
            "connections": conns,
            "links": [
                {"from": lk.src, "to": lk.dst, "relation": lk.relation, "reason": lk.reason}
                for lk in analysis.links
                if lk.src in shown and lk.dst in shown
            ],
        }
        path = self._write_export(".json", json.dumps(document, indent=1, ensure_ascii=False))
        if path is not None:
            note = self._redaction_note(redacted)
            self.notify(f"Wrote {len(ids):,} messages to {path}{note}", title="Exported", timeout=6)

    def _redaction_note(self, redacted: int) -> str:
        if not self.redacting:
            return " (not redacted: credentials as captured)"
        return f" ({redacted} credential(s) redacted)" if redacted else ""

    def action_export_trace(self) -> None:
        from proxy.store.redact import RedactionError, redact_events
        from proxy.store.trace import write_trace
        from tui.export import visible_events

        events = visible_events(self.analysis, self._visible_rows())
        redacted = 0
        if self.redacting:
            try:
                events, report = redact_events(events)
            except RedactionError as exc:
                self.notify(f"Nothing written: {exc}", severity="error")
                return
            redacted = len(report.removals)
        meta = {"exported_from": self.source.label, "redacted": self.redacting}
        path = self._export_path(".jsonl")
        try:
            write_trace(path, meta, events)
        except OSError as exc:
            self.notify(f"Could not write {path}: {exc.strerror or exc}", severity="error")
            return
        count = sum(isinstance(e, Data) for e in events)
        note = self._redaction_note(redacted)
        self.notify(f"Wrote {count:,} messages as a trace to {path}{note}", title="Exported")

    def _write_export(self, suffix: str, text: str) -> Path | None:
        path = self._export_path(suffix)
        try:
            # a lone surrogate (from a valid "\\ud800" escape) is written as its
            # escape, which keeps the JSON valid
            path.write_text(text, encoding="utf-8", errors="backslashreplace")
        except OSError as exc:
            self.notify(f"Could not write {path}: {exc.strerror}", severity="error")
            return None
        return path

    # -- playback -----------------------------------------------------------------

    def _player(self) -> PlaySource | None:
        return self.source if isinstance(self.source, PlaySource) else None

    def _play(self, control: Callable[[PlaySource], None], show: bool = True) -> None:
        """Apply a playback control; ``show`` puts the player's new status on screen."""
        if player := self._player():
            control(player)
            if show:
                self.feeder.progress = player.status()
                self._update_status()

    def action_play_pause(self) -> None:
        self._play(PlaySource.toggle_pause)

    def action_play_step(self) -> None:
        self._play(PlaySource.step, show=False)

    def action_play_faster(self) -> None:
        self._play(PlaySource.faster)

    def action_play_slower(self) -> None:
        self._play(PlaySource.slower)

    # -- the command palette ------------------------------------------------------

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        playing = self._player() is not None
        for command in commands.COMMANDS:
            if playing or not command.playback:
                yield SystemCommand(command.title, command.help, self._runner(command.action))
        yield from super().get_system_commands(screen)

    def _runner(self, action: str) -> Callable[[], Any]:
        async def run() -> None:
            await self.run_action(action)

        return run


def run_tui(
    source: Source,
    *,
    title: str | None = None,
    stall_window: float | None = None,
    analysis: Analysis | None = None,
) -> InvisApp:
    """Run the TUI until the user quits (blocking); returns the app for inspection.

    For a live relay, build a :class:`~tui.sources.LiveSource`, give its ``push`` to
    the relay as the event sink and pass it here. To run inside an existing loop use
    ``await InvisApp(source, ...).run_async()`` instead.
    """
    app = InvisApp(source, title=title, stall_window=stall_window, analysis=analysis)
    app.run()
    return app


__all__ = ["InvisApp", "run_tui"]
