"""The query bar: one input line for a filter, a search or the intercept filter, and the
error line above it.

A filter is checked on every key (the error shows at once) but applied only on Enter,
since filtering a big capture is not free; a search moves the selection as it is
typed, from where it started. The app says what to do with the result
(``on_filter``, ``on_search``); this only runs the two widgets.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass
from typing import Literal

from textual.widgets import Input, Static

from proxy.core.filter import Filter, FilterError
from tui.focus import focus_now

Mode = Literal["filter", "search", "intercept"]

PLACEHOLDERS: dict[Mode, str] = {
    "filter": "filter: cb:21-23 and not kind:push · ann:spurious-ota-result · conn:c2 or pid:1",
    "search": "search: text or filter terms; Enter keeps it, n/N for next/previous",
    "intercept": "intercept (hold before forwarding): cb:21-23 dir:app · empty: hold nothing",
}
TITLES: dict[Mode, str] = {"filter": "Filter", "search": "Search", "intercept": "Intercept"}


@dataclass(eq=False)
class QueryBar:
    """Opens, checks and closes the query input; ``done`` gives the focus back."""

    field: Input
    error: Static
    _: KW_ONLY
    on_filter: Callable[[Filter], None]
    on_search: Callable[[str], None]
    on_intercept: Callable[[Filter], None]
    done: Callable[[], object]
    _mode: Mode | None = dataclasses.field(default=None, init=False)

    @property
    def mode(self) -> Mode | None:
        """What the open bar edits; None while it is closed."""
        return self._mode

    def hide(self) -> None:
        """The bar starts hidden (on mount)."""
        self.field.display = False
        self.error.display = False

    def open(self, mode: Mode, value: str) -> None:
        self._mode = mode
        field = self.field
        field.placeholder = PLACEHOLDERS[mode]
        field.border_title = TITLES[mode]
        field.value = value
        field.display = True
        focus_now(field)

    def close(self) -> None:
        self._mode = None
        self.hide()
        self.done()

    def changed(self, value: str) -> None:
        """A key in the input: check a filter, or search on."""
        if self._mode in ("filter", "intercept"):
            try:
                Filter.parse(value)
            except FilterError as exc:
                self._show_error(exc)
            else:
                self._show_error(None)
        elif self._mode == "search":
            self.on_search(value)

    def submitted(self, value: str) -> None:
        """Enter: apply a valid filter (a bad one stays open with its error)."""
        if self._mode in ("filter", "intercept"):
            try:
                flt = Filter.parse(value)
            except FilterError as exc:
                self._show_error(exc)
                return
            chosen = self.on_filter if self._mode == "filter" else self.on_intercept
            self.close()
            chosen(flt)
        else:
            self.close()

    def _show_error(self, error: FilterError | None) -> None:
        if error is None:
            self.error.display = False
        else:
            self.error.update(f"✖ {error}")
            self.error.display = True
