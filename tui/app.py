"""The invisproxy TUI: timeline, detail, OTA panel, filter and search over one analysis.

Events arrive from a :class:`~tui.sources.Source` into the app's
:class:`~tui.feeder.Feeder`, which analyses them in slices of bounded time. The screen
catches up on a timer, a few times a second, so hundreds of events per second cost a
few repaints. ``feeder.loaded`` is set once a finite source is all on the analysis.

The app wires the widgets to the controllers that do the work and is where Textual
finds the actions of :mod:`tui.commands`: :mod:`tui.navigation` (jumps, marks, search),
:mod:`tui.query` (the filter and search input), :mod:`tui.exporting` (copy, exports,
redaction), :mod:`tui.playback`, :mod:`tui.selection` (the detail following the
cursor) and :mod:`tui.status` (the status line, fitted to the width).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from textual import events, on
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import BindingType
from textual.containers import Horizontal, Vertical
from textual.geometry import Size
from textual.screen import Screen
from textual.widgets import Footer, Input, Static

from proxy.core.filter import Filter
from tui import commands, describe, status
from tui.exporting import Exporter
from tui.feeder import Feeder
from tui.focus import CHECK_EVERY, KeyOrder, focus_now
from tui.intervening import Intervener
from tui.navigation import NavigationActions, Navigator
from tui.playback import Playback, PlaybackActions
from tui.query import QueryBar
from tui.selection import DetailSync
from tui.sources import Source
from tui.view import RowView, session_messages
from tui.widgets.detail import DetailPane
from tui.widgets.held import HeldPanel
from tui.widgets.help import HelpScreen
from tui.widgets.ota import OtaPanel
from tui.widgets.timeline import Timeline

if TYPE_CHECKING:
    from proxy.core.analysis import Analysis

TICK = 1 / 20  # repaint at most this often
VIEW_BUDGET = 0.015  # seconds of filtering per tick
SEARCH_BUDGET = 0.25  # seconds a search may take per key while it is typed
PANEL_EVERY = 5  # ticks between side-panel refreshes while loading
WIDE = 120  # columns from which the detail sits beside the timeline
# Below WIDE the panes stack; on a screen shorter than this the detail starts hidden
# (d shows it) so the timeline keeps most of the rows: with the tags on each row it
# says what matters, and the detail is a key away.
DETAIL_MIN_HEIGHT = 36


class InvisApp(NavigationActions, PlaybackActions, App[None]):
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
        self.clock = clock
        self.feeder = Feeder(
            analysis, streaming=source.streaming, on_problems=self._notify_problems
        )
        self._feed_task: asyncio.Task[None] | None = None
        self._generation = -1
        self._last_advance = 0.0
        self._filter = Filter.parse("")
        self._session: int | None = None
        self._detail_auto = True  # shown or hidden by the screen size until the user says
        self._status_text = ""
        self._ticks = 0
        self.timeline = Timeline(analysis, id="timeline")
        self.timeline.following = source.streaming
        self.detail = DetailPane(analysis, id="detail")
        self.ota = OtaPanel(analysis, id="ota")
        self.status = Static(id="status")
        self.detail_sync = DetailSync(analysis, self.timeline, self.detail)
        self.navigation = Navigator(analysis, self.timeline, self.notify)
        self.query_bar = QueryBar(
            Input(id="query"),
            Static(id="query-error"),
            on_filter=self._filter_chosen,
            on_search=lambda text: self.navigation.search_for(text, SEARCH_BUDGET),
            on_intercept=self._intercept_chosen,
            done=lambda: focus_now(self.timeline),
        )
        self.keys = KeyOrder(self.post_message, lambda check: self.set_interval(CHECK_EVERY, check))
        self.exporter = Exporter(
            analysis,
            label=source.label,
            export_dir=export_dir or Path.cwd(),
            notify=self.notify,
            copy_text=self.copy_to_clipboard,
        )
        self.playback = Playback(source, self._playback_status)
        self.held_panel = HeldPanel(id="held")
        self.intervener = Intervener(self, source.control, self.held_panel)
        self._held_shown = 0.0

    # -- layout -----------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield self.status
        with Horizontal(id="main"):
            yield self.timeline
            with Vertical(id="side"):
                yield self.ota
                yield self.detail
        yield self.held_panel
        yield self.query_bar.error
        yield self.query_bar.field
        yield Footer()

    def on_mount(self) -> None:
        self.timeline.focus()
        self.timeline.border_title = "Timeline"
        self.query_bar.hide()
        self.ota.display = False
        self.held_panel.display = False
        self.intervener.attach()
        self._fit_detail(self.size)
        self._feed_task = asyncio.get_running_loop().create_task(self._feed_loop())
        self.set_interval(TICK, self._tick)
        self.source.start(self.feeder)
        self._update_status()

    async def on_unmount(self) -> None:
        self.intervener.detach()
        if self._feed_task is not None:
            self._feed_task.cancel()
        await self.source.stop()

    async def on_event(self, event: events.Event) -> None:
        if isinstance(
            event, events.Key | events.MouseDown | events.MouseScrollDown | events.MouseScrollUp
        ):
            self.feeder.note_input()
        if isinstance(event, events.Key | events.Paste) and not event.is_forwarded:
            await self._read_key(event)
            return
        await super().on_event(event)

    async def _read_key(self, key: events.Key | events.Paste) -> None:
        """One key (or paste) from the terminal, once the one before it is handled
        (tui.focus)."""
        if not self.keys.admit(key):
            return
        target = self.focused or self.screen
        closing = (
            target is self.query_bar.field
            and isinstance(key, events.Key)
            and key.key in ("enter", "escape")
        )
        await super().on_event(key)
        if closing:
            self.keys.hold()  # until the line has closed (or said why not)
        if key.is_forwarded:
            self.keys.follow(list(target.ancestors_with_self))
        else:
            self.keys.done()  # a priority binding handled it here

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
        self.detail_sync.show_if_due()
        self._held_tick()
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

    def _held_tick(self) -> None:
        """Redraw the held strip when the relay changed it, and each second while
        something is held (its ages move)."""
        now = time.monotonic()
        aging = self.held_panel.display and now - self._held_shown >= 1.0
        if self.intervener.refresh(force=aging):
            self._held_shown = now
            self._update_status()

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
        self.detail_sync.refresh(force=False)
        self._update_status()

    def _update_status(self, width: int | None = None) -> None:
        """Show the status line, fitted to the terminal's ``width`` (default: now)."""
        tl = self.timeline
        feeder = self.feeder
        parts = status.status_parts(
            messages=len(self.analysis.messages),
            shown=None if tl.view.is_identity else len(tl.view),
            filtering=not tl.view.complete,
            expression=self._filter.expression,
            ota_session=self._session,
            streaming=self.source.streaming,
            following=tl.following,
            new_rows=tl.new_rows,
            time_mode=tl.time_mode,
            redacting=self.exporter.redacting,
            progress=feeder.progress,
            rate=feeder.rate() if feeder.progress else "",
            problems=len(feeder.problems) if feeder.finished else 0,
            intercept=self.intervener.intercept_text,
            held=len(self.held_panel.held),
        )
        width = self.size.width if width is None else width
        text = status.fit(parts, width - self.status.styles.gutter.width)
        if text != self._status_text:
            self._status_text = text
            self.status.update(text, layout=False)

    # -- selection ----------------------------------------------------------------

    @on(Timeline.CursorMoved)
    def _cursor_moved(self, event: Timeline.CursorMoved) -> None:
        self.detail_sync.cursor_moved()
        self._update_status()

    @on(Timeline.FollowChanged)
    def _follow_changed(self) -> None:
        self._update_status()

    # -- actions: the table in tui.commands names them -----------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in commands.PLAYBACK_ACTIONS:
            return self.playback.available
        if action in commands.HELD_ONLY_ACTIONS:
            return bool(self.intervener.held())
        return True

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            rows = commands.help_rows(
                playing=self.playback.available, live=self.source.control is not None
            )
            self.push_screen(HelpScreen(rows))

    def action_time_mode(self) -> None:
        modes = describe.TIME_MODES
        mode = modes[(modes.index(self.timeline.time_mode) + 1) % len(modes)]
        self.timeline.set_time_mode(mode)
        self._update_status()
        self.notify(f"Time: {mode}", timeout=1.5)

    def action_follow(self) -> None:
        self.timeline.resume_follow()
        self._update_status()

    def action_copy(self) -> None:
        if (msg := self.navigation.need_message()) is not None:
            self.exporter.copy(msg)

    def action_export(self) -> None:
        self.exporter.export_json(
            self._visible_rows(), expression=self._filter.expression, ota_session=self._session
        )

    def action_export_trace(self) -> None:
        self.exporter.export_trace(self._visible_rows())

    def _visible_rows(self) -> Iterable[int]:
        view = self.timeline.view
        return (view.row_index(p) for p in range(len(view)))

    def action_toggle_redact(self) -> None:
        self.exporter.toggle_redact()
        self._update_status()

    def action_sessions(self) -> None:
        if not self.analysis.sessions:
            self.notify("No OTA updates in this capture (yet)", severity="warning")
            return
        self.ota.remove_class("hidden")
        self.ota.display = True
        if self.ota.highlighted is None:
            self.ota.highlighted = 0
        focus_now(self.ota)

    def action_toggle_detail(self) -> None:
        self._detail_auto = False
        self._show_detail(not self.detail.display)

    def _show_detail(self, show: bool) -> None:
        if show == self.detail.display:
            return
        self.detail.display = show
        self.query_one("#side").display = show or self.ota.display
        if show:
            self.detail_sync.refresh(force=True)

    def on_resize(self, event: events.Resize) -> None:
        # Textual stores the new size only after this handler: ``self.size`` is stale.
        self._fit_detail(event.size)
        self._update_status(event.size.width)

    def _fit_detail(self, size: Size) -> None:
        if self._detail_auto:
            self._show_detail(size.width >= WIDE or size.height >= DETAIL_MIN_HEIGHT)

    # -- what is on show: the filter and the OTA session --------------------------

    def action_filter(self) -> None:
        self.query_bar.open("filter", self._filter.expression)

    @on(Input.Changed, "#query")
    def _query_changed(self, event: Input.Changed) -> None:
        self.query_bar.changed(event.value)

    @on(Input.Submitted, "#query")
    def _query_submitted(self, event: Input.Submitted) -> None:
        self.query_bar.submitted(event.value)
        self.keys.release()  # closed, or open with its error: the focus is where it stays

    def _filter_chosen(self, flt: Filter) -> None:
        self._filter = flt
        self._apply_view()

    def action_clear_filter(self) -> None:
        if self.query_bar.mode is not None:
            self.query_bar.close()
            self.keys.release()
            return
        if self._filter.is_empty and self._session is None:
            return
        self._filter = Filter.parse("")
        self._session = None
        self._apply_view()
        self.notify("Showing all rows", timeout=1.5)

    def _apply_view(self) -> None:
        analysis = self.analysis
        ids = None if self._session is None else session_messages(analysis.sessions[self._session])
        tl = self.timeline
        view = RowView(analysis.rows, analysis.messages, tl.text_of, self._filter, ids)
        view.sync(VIEW_BUDGET * 4)
        tl.set_view(view)
        self._update_status()

    @on(OtaPanel.SessionChosen)
    def _session_chosen(self, event: OtaPanel.SessionChosen) -> None:
        self._session = event.index
        self._apply_view()
        focus_now(self.timeline)
        if event.index is not None:
            self.notify(f"Showing OTA update #{event.index + 1} only (Esc: all)", timeout=2)

    # -- intervening in live traffic (tui.intervening) ---------------------------

    def action_intercept(self) -> None:
        if self.intervener.interventions is None:
            self.intervener.intercept_chosen(Filter.parse(""))  # says it needs a live proxy
            return
        self.query_bar.open("intercept", self.intervener.intercept_text)

    def _then_status(self, act: Callable[[], object]) -> None:
        """Do ``act`` and show its effect on the held count now, not at the next tick."""
        act()
        self._update_status()

    def _intercept_chosen(self, flt: Filter) -> None:
        self._then_status(lambda: self.intervener.intercept_chosen(flt))

    def action_held_forward(self) -> None:
        self._then_status(self.intervener.forward)

    def action_held_drop(self) -> None:
        self._then_status(self.intervener.drop)

    def action_held_forward_all(self) -> None:
        self._then_status(self.intervener.forward_all)

    def action_held_edit(self) -> None:
        self.intervener.edit()

    def action_inject_outlet(self) -> None:
        self.intervener.inject("outlet")

    def action_inject_app(self) -> None:
        self.intervener.inject("app")

    def action_rules(self) -> None:
        self.intervener.rules()

    async def action_quit(self) -> None:
        """Quit; with held messages, first ask whether to forward or drop them."""
        self.intervener.quit(self.exit)

    # -- playback -----------------------------------------------------------------

    def _playback_status(self, text: str) -> None:
        self.feeder.progress = text
        self._update_status()

    # -- the command palette ------------------------------------------------------

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        yield from commands.palette(self.run_action, playing=self.playback.available)
        yield from super().get_system_commands(screen)


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
