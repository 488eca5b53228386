"""The JSON editor for a held message or an injection: invalid JSON cannot be sent.

The text is checked on every change and the line under the editor says what is wrong
(with the line and column) or that it is ready. Ctrl+S sends (refused while invalid),
Esc gives up; the screen's result is the text, or None. The caller sends it compactly.
"""

from __future__ import annotations

import json
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Footer, Static, TextArea


def json_problem(text: str) -> str | None:
    """Why ``text`` is not one JSON value (with line and column), or None when it is."""
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        return f"{exc.msg} (line {exc.lineno}, column {exc.colno})"
    except RecursionError:
        return "nested too deeply"
    return None


class EditorScreen(ModalScreen[str | None]):
    """Edit JSON over the timeline; dismissed with the text (sent) or None (cancelled)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "send", "Send", priority=True),
        Binding("escape", "cancel", "Cancel", priority=True),
    ]

    DEFAULT_CSS = """
    EditorScreen { align: center middle; }
    EditorScreen > Vertical {
        width: 90%; max-width: 100; height: 90%;
        border: round $primary; background: $surface;
    }
    EditorScreen #editor-about { color: $text-muted; padding: 0 1; height: auto; }
    EditorScreen TextArea { height: 1fr; }
    EditorScreen #editor-check { height: 1; padding: 0 1; }
    EditorScreen #editor-check.-invalid { color: $text-error; background: $error 15%; }
    EditorScreen #editor-check.-valid { color: $text-success; }
    """

    def __init__(self, title: str, text: str, about: str = "", *, verb: str = "send") -> None:
        super().__init__()
        self.title_text = title
        self.about = about
        self.verb = verb
        self.area = TextArea(text, id="editor-text", show_line_numbers=True, tab_behavior="indent")
        self.check = Static(id="editor-check")
        self.problem: str | None = json_problem(text)

    def compose(self) -> ComposeResult:
        with Vertical() as box:
            box.border_title = self.title_text
            box.border_subtitle = f"Ctrl+S {self.verb} · Esc cancel"
            if self.about:
                yield Static(self.about, id="editor-about")
            yield self.area
            yield self.check
        yield Footer()

    def on_mount(self) -> None:
        self._show_check()
        self.area.focus()

    @on(TextArea.Changed)
    def _changed(self, event: TextArea.Changed) -> None:
        self.problem = json_problem(self.area.text)
        self._show_check()

    def _show_check(self) -> None:
        check = self.check
        if self.problem is None:
            check.update(f"✔ valid JSON: Ctrl+S to {self.verb} it (compactly)")
            check.set_class(False, "-invalid")
            check.set_class(True, "-valid")
        else:
            check.update(f"✖ not valid JSON, cannot be sent: {self.problem}")
            check.set_class(True, "-invalid")
            check.set_class(False, "-valid")

    def action_send(self) -> None:
        if self.problem is not None:
            self.notify(
                f"Not sent: the text is not valid JSON ({self.problem})",
                severity="error",
                timeout=4,
            )
            return
        self.dismiss(self.area.text)

    def action_cancel(self) -> None:
        self.dismiss(None)
