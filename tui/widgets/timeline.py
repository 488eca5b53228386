"""The timeline: one line per message or connection event, drawn with the Line API.

It renders straight from the analysis' ``rows`` through a :class:`~tui.view.RowView`,
so its cost is the number of lines on screen, not the number of rows: a million rows
scroll as smoothly as ten. Rendered lines are kept in an LRU cache keyed by everything
that changes them (row, width, time mode, analysis generation).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding, BindingType
from textual.cache import LRUCache
from textual.geometry import Region, Size
from textual.message import Message as TextualMessage
from textual.scroll_view import ScrollView
from textual.strip import Strip

from proxy.core.model import Message, Row
from tui import describe
from tui.describe import TimeMode
from tui.view import MessageRows, RowView

if TYPE_CHECKING:
    from proxy.core.analysis import Analysis

GUTTER = 3  # mark, link glyph, space
NAME_COLUMN_MIN_WIDTH = 110
NAME_COLUMN_MAX = 30  # all but the longest callback names ("MQTT status / Home ...")
# Lines kept rendered: a few screens. Each Strip is some thirty objects the cyclic GC
# walks on every full collection, so a bigger cache makes key presses stall more often
# than it saves (1024 + 1024 lines made full collections ~50 ms).
CACHED_LINES = 256


def name_column_width(width: int) -> int:
    """The callback name column of a timeline ``width`` cells wide: none on narrow ones,
    18 cells from NAME_COLUMN_MIN_WIDTH on, growing with half of every cell beyond."""
    if width < NAME_COLUMN_MIN_WIDTH:
        return 0
    return min(18 + (width - NAME_COLUMN_MIN_WIDTH) // 2, NAME_COLUMN_MAX)


class Timeline(ScrollView, can_focus=True):
    """Every row of the capture, one line each; a cursor selects one."""

    ALLOW_MAXIMIZE = True

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "timeline--cursor",
        "timeline--time",
        "timeline--request",
        "timeline--response",
        "timeline--push",
        "timeline--invalid",
        "timeline--conn",
        "timeline--muted",
        "timeline--info",
        "timeline--warning",
        "timeline--error",
        "timeline--mark",
        "timeline--link",
        "timeline--session",
        "timeline--injected",
        "timeline--intervened",
    }

    DEFAULT_CSS = """
    Timeline {
        background: $surface;
        scrollbar-size-vertical: 1;
        overflow-x: hidden;
    }
    Timeline > .timeline--cursor { background: $block-cursor-blurred-background; }
    Timeline:focus > .timeline--cursor {
        background: $block-cursor-background;
        color: $block-cursor-foreground;
        text-style: $block-cursor-text-style;
    }
    Timeline > .timeline--time { color: $text-muted; }
    Timeline > .timeline--request { color: $text-primary; }
    Timeline > .timeline--response { color: $text-success; }
    Timeline > .timeline--push { color: $text-secondary; }
    Timeline > .timeline--invalid { color: $text-error; text-style: bold; }
    Timeline > .timeline--conn { color: $text-muted; text-style: italic; }
    Timeline > .timeline--muted { color: $text-muted; }
    Timeline > .timeline--info { color: $text-primary; }
    Timeline > .timeline--warning { color: $text-warning; text-style: bold; }
    Timeline > .timeline--error { color: $text-error; text-style: bold; }
    Timeline > .timeline--mark { color: $text-warning; }
    Timeline > .timeline--link { color: $text-accent; text-style: bold; }
    Timeline > .timeline--session { color: $text-accent; }
    Timeline > .timeline--injected { color: $text-warning; text-style: italic; }
    Timeline > .timeline--intervened { color: $text-warning; text-style: bold; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up,k", "cursor_up", "Up", show=False),
        Binding("down,j", "cursor_down", "Down", show=False),
        Binding("pageup", "page_up", "Page up", show=False),
        Binding("pagedown", "page_down", "Page down", show=False),
        Binding("home", "first", "First", show=False),
        Binding("end", "app.follow", "Follow", show=False),
    ]

    class CursorMoved(TextualMessage):
        """The selected row changed (``row_index`` into ``Analysis.rows``, or -1)."""

        def __init__(self, row_index: int) -> None:
            super().__init__()
            self.row_index = row_index

    class FollowChanged(TextualMessage):
        """Follow mode was paused by the user or resumed."""

        def __init__(self, following: bool) -> None:
            super().__init__()
            self.following = following

    def __init__(self, analysis: Analysis, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.analysis = analysis
        self.message_rows = MessageRows(analysis.rows)
        self.view = RowView(analysis.rows, analysis.messages, self.text_of)
        self.cursor = 0
        self.following = True
        self.new_rows = 0
        self._seen_rows = 0
        self.time_mode: TimeMode = "relative"
        self.marks: set[int] = set()  # row indices
        self.related: dict[int, str] = {}  # message id -> relation glyph
        self.session_ids: frozenset[int] = frozenset()
        self._cache: LRUCache[tuple[object, ...], Strip] = LRUCache(CACHED_LINES)
        self._lines: LRUCache[tuple[object, ...], Strip] = LRUCache(CACHED_LINES)
        self._base_style = Style()
        self._text_cache: LRUCache[int, str] = LRUCache(4096)
        self._conn_width = 2

    # -- data -------------------------------------------------------------------

    def text_of(self, row: Row, msg: Message | None) -> str:
        """What a text search looks at: name, summary and the raw frame."""
        if msg is None:
            conn = self.analysis.connections.get(row.conn)
            line = describe.connection_text(row, conn)
            if conn is not None and conn.error and row.kind == "close":
                line += f" {conn.error}"  # the full error is findable too
            return line
        key = msg.id
        text = self._text_cache.get(key)
        if text is None:
            text = f"{msg.name} {describe.summary(msg)} {describe.raw_text(msg, 400)}"
            self._text_cache.set(key, text)
        return text

    def set_view(self, view: RowView) -> None:
        """Show another selection of rows, keeping the selected row if it is still shown."""
        current = self.current_row_index
        self.view = view
        self._text_cache.clear()
        self.clear_caches()
        self._seen_rows = len(view)
        self.new_rows = 0
        self._update_size()
        if current >= 0 and len(view):
            self.cursor = view.nearest_position(current)
        else:
            self.cursor = 0
        if self.following:
            self.cursor = max(len(view) - 1, 0)
        self._scroll_to_cursor(center=True)
        self.refresh()
        self.post_message(self.CursorMoved(self.current_row_index))

    def data_changed(self) -> None:
        """The analysis grew or changed: resize, keep following, count what is new."""
        self.message_rows.sync()
        conn_width = max((len(c) for c in self.analysis.connections), default=2)
        self._conn_width = min(max(conn_width, 2), 8)
        self._update_size()
        total = len(self.view)
        if self.following:
            self._seen_rows = total
            if total and self.cursor != total - 1:
                self.cursor = total - 1
                self._scroll_to_cursor()
                self.post_message(self.CursorMoved(self.current_row_index))
        else:
            self.new_rows = max(total - self._seen_rows, 0)
        # always: rows already shown may have changed too (a reply linked, a verdict)
        self.refresh()

    def _update_size(self) -> None:
        self.virtual_size = Size(self.scrollable_content_region.width, len(self.view))

    @property
    def current_row_index(self) -> int:
        if 0 <= self.cursor < len(self.view):
            return self.view.row_index(self.cursor)
        return -1

    @property
    def current_message(self) -> Message | None:
        ri = self.current_row_index
        if ri < 0:
            return None
        ref = self.analysis.rows[ri].ref
        return self.analysis.messages[ref] if ref >= 0 else None

    def set_related(self, related: dict[int, str], session_ids: frozenset[int]) -> None:
        """Mark the selected message's links and session; repaint only the changed lines."""
        before = [self._glyph_at(p) for p in self._visible_positions()]
        self.related = related
        self.session_ids = session_ids
        for position, glyph in zip(self._visible_positions(), before, strict=True):
            if self._glyph_at(position) != glyph:
                self.refresh_line(position)

    def _visible_positions(self) -> range:
        top = round(self.scroll_offset.y)
        return range(top, min(top + self.scrollable_content_region.height, len(self.view)))

    def _glyph_at(self, position: int) -> str:
        ref = self.analysis.rows[self.view.row_index(position)].ref
        if ref < 0:
            return ""
        return self.related.get(ref) or (describe.SESSION_GLYPH if ref in self.session_ids else "")

    def set_time_mode(self, mode: TimeMode) -> None:
        self.time_mode = mode
        self.refresh()

    def toggle_mark(self) -> bool | None:
        ri = self.current_row_index
        if ri < 0:
            return None
        if ri in self.marks:
            self.marks.discard(ri)
            marked = False
        else:
            self.marks.add(ri)
            marked = True
        self.refresh_line(self.cursor)
        return marked

    # -- moving -----------------------------------------------------------------

    def move_to(self, position: int, *, user: bool = True, center: bool = False) -> None:
        total = len(self.view)
        if not total:
            return
        position = max(0, min(position, total - 1))
        if user and self.following and position != total - 1:
            self.pause_follow()
        previous, top = self.cursor, round(self.scroll_offset.y)
        self.cursor = position
        self._scroll_to_cursor(center=center)
        if round(self.scroll_offset.y) == top:  # no scroll: two lines changed
            self.refresh_line(previous)
            self.refresh_line(position)
        else:
            self.refresh()
        self.post_message(self.CursorMoved(self.current_row_index))

    def select_row_index(self, row_index: int) -> bool:
        """Put the cursor on a row; False when the current view hides it."""
        position = self.view.position_of(row_index)
        if position is None:
            return False
        self.move_to(position, center=not self._is_visible(position))
        return True

    def pause_follow(self) -> None:
        if self.following:
            self.following = False
            self._seen_rows = len(self.view)
            self.new_rows = 0
            self.post_message(self.FollowChanged(False))

    def resume_follow(self) -> None:
        self.following = True
        self.new_rows = 0
        self._seen_rows = len(self.view)
        self.move_to(len(self.view) - 1, user=False)
        self.post_message(self.FollowChanged(True))

    def _is_visible(self, position: int) -> bool:
        top = round(self.scroll_offset.y)
        return top <= position < top + self.scrollable_content_region.height

    def _scroll_to_cursor(self, center: bool = False) -> None:
        height = max(self.scrollable_content_region.height, 1)
        top = round(self.scroll_offset.y)
        if center:
            target = self.cursor - height // 2
        elif self.cursor < top:
            target = self.cursor
        elif self.cursor >= top + height:
            target = self.cursor - height + 1
        else:
            return
        max_top = max(len(self.view) - height, 0)
        self.scroll_to(y=max(0, min(target, max_top)), animate=False, immediate=True)

    def action_cursor_up(self) -> None:
        self.move_to(self.cursor - 1)

    def action_cursor_down(self) -> None:
        self.move_to(self.cursor + 1)

    def action_page_up(self) -> None:
        self.move_to(self.cursor - max(self.scrollable_content_region.height - 1, 1))

    def action_page_down(self) -> None:
        self.move_to(self.cursor + max(self.scrollable_content_region.height - 1, 1))

    def action_first(self) -> None:
        self.move_to(0)

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is not None:
            self.move_to(round(self.scroll_offset.y) + offset.y)

    def on_mouse_scroll_up(self, event: events.MouseScrollUp) -> None:
        self.pause_follow()

    def on_resize(self, event: events.Resize) -> None:
        self.clear_caches()
        self._update_size()
        self._scroll_to_cursor()  # a pane opening below must not hide the selection

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self.clear_caches()

    # -- drawing ----------------------------------------------------------------

    def clear_caches(self) -> None:
        """Forget the rendered lines (the next paint draws them all again, cold)."""
        self._cache.clear()
        self._lines.clear()

    def render_lines(self, crop: Region) -> list[Strip]:
        # ``rich_style`` walks every ancestor's styles: once per paint, not per line.
        self._base_style = self.rich_style
        return super().render_lines(crop)

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        position = round(self.scroll_offset.y) + y
        view = self.view
        base = self._base_style
        if position >= len(view) or width <= GUTTER:
            return Strip.blank(width, base)
        ri = view.row_index(position)
        rows = self.analysis.rows
        row = rows[ri]
        delta = self.time_mode == "delta"
        previous = rows[view.row_index(position - 1)].t if delta and position > 0 else None
        key = (ri, width, self.time_mode, previous, self.analysis.generation)
        mark = ri in self.marks
        glyph = self._glyph_at(position)
        cursor = position == self.cursor
        line_key = (key, mark, glyph, base)
        strip = None if cursor else self._lines.get(line_key)
        if strip is None:
            body = self._cache.get(key)
            if body is None:
                body = self._render_body(row, width - GUTTER, previous)
                self._cache.set(key, body)
            gutter = self._render_gutter(mark, glyph, row.ref in self.related)
            strip = Strip.join([gutter, body])
            if cursor:  # under the segments' own colours, over the background
                strip = strip.apply_style(self.get_component_rich_style("timeline--cursor"))
            strip = strip.apply_style(base)
            if not cursor:
                self._lines.set(line_key, strip)
        return strip

    def _render_gutter(self, mark: bool, glyph: str, linked: bool) -> Strip:
        style = self.get_component_rich_style
        mark_segment = (
            Segment(describe.MARK_GLYPH, style("timeline--mark", partial=True))
            if mark
            else Segment(" ")
        )
        glyph_style = Style()
        if glyph:
            component = "timeline--link" if linked else "timeline--session"
            glyph_style = style(component, partial=True)
        return Strip([mark_segment, Segment(glyph or " ", glyph_style), Segment(" ")], GUTTER)

    def _render_body(self, row: Row, width: int, previous: float | None) -> Strip:
        style = self.get_component_rich_style
        rows = self.analysis.rows
        start = rows[0].t if rows else 0.0
        time_width = 12 if self.time_mode == "absolute" else 9
        t_text = describe.time_text(self.time_mode, row.t, start, previous)
        segments = [Segment(f"{t_text:>{time_width}} ", style("timeline--time", partial=True))]
        conn = f"{row.conn[: self._conn_width]:<{self._conn_width}} "
        if row.ref < 0:
            muted = style("timeline--conn", partial=True)
            glyph = "┌" if row.kind == "open" else "└"
            text = describe.connection_text(row, self.analysis.connections.get(row.conn))
            segments += [Segment("  "), Segment(conn, muted), Segment(f"{glyph} ", muted)]
            segments.append(Segment(text, muted))
            return Strip(segments).adjust_cell_length(width)
        msg = self.analysis.messages[row.ref]
        severity = describe.worst_severity(msg)
        if severity is None:
            segments.append(Segment("  "))
        else:
            glyph = describe.SEVERITY_GLYPHS[severity]
            segments.append(Segment(f"{glyph} ", style(f"timeline--{severity}", partial=True)))
        kind_style = style(f"timeline--{msg.kind}", partial=True)
        muted = style("timeline--muted", partial=True)
        arrow = describe.ARROWS[msg.side]
        segments.append(Segment(conn, muted))
        # what the proxy did to it, in the cell after the arrow (a space for nothing)
        if msg.intervention is None:
            segments.append(Segment(f"{arrow} ", kind_style))
        else:
            done = describe.intervention_glyph(msg)
            intervened = style("timeline--intervened", partial=True)
            segments += [Segment(arrow, kind_style), Segment(done, intervened)]
        segments.append(Segment(f"{msg.transport:<3} ", muted))
        # The summary starts with what the callback does; a separate name column only
        # pays for itself on wide screens.
        name_width = name_column_width(width)
        number = "" if msg.callback is None else str(msg.callback)
        cb = f"{number:>2} "
        if name_width:
            name = "invalid" if msg.kind == "invalid" else msg.name
            cb += f"{set_cell_size(name, name_width)} "
        segments.append(Segment(cb, kind_style))
        pid = "" if msg.packet_id is None else str(msg.packet_id)
        segments.append(Segment(f"{pid[:6]:>6} ", muted))
        used = sum(cell_len(s.text) for s in segments)
        rest = max(width - used, 0)
        tags = describe.tags(msg)
        summary, tag = describe.fit(describe.summary(msg), tags, rest)
        summary_style = style("timeline--injected", partial=True) if msg.injected else None
        if severity in ("warning", "error"):
            summary_style = style(f"timeline--{severity}", partial=True)
        segments.append(Segment(summary, summary_style))
        if tag:
            segments.append(Segment(tag, style(f"timeline--{tags[0].severity}", partial=True)))
        return Strip(segments).adjust_cell_length(width)
