"""A short list to choose from over the timeline (what to do with held messages, which
callback to inject); the result is the chosen id, or None for Esc."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option


class ChoiceScreen(ModalScreen[str | None]):
    """``options`` are (id, label) pairs; Enter chooses, Esc cancels (None)."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    DEFAULT_CSS = """
    ChoiceScreen { align: center middle; }
    ChoiceScreen > Vertical {
        width: 80%; max-width: 80; height: auto; max-height: 90%;
        border: round $primary; background: $surface;
    }
    ChoiceScreen #choice-question { padding: 0 1; height: auto; }
    ChoiceScreen OptionList { height: auto; max-height: 20; border: none; }
    """

    def __init__(self, title: str, question: str, options: Sequence[tuple[str, str]]) -> None:
        super().__init__()
        self.title_text = title
        self.question = question
        self.options = list(options)

    def compose(self) -> ComposeResult:
        with Vertical() as box:
            box.border_title = self.title_text
            box.border_subtitle = "Enter choose · Esc cancel"
            yield Static(self.question, id="choice-question")
            yield OptionList(*(Option(label, id=key) for key, label in self.options))

    def on_mount(self) -> None:
        self.query_one(OptionList).focus()

    @on(OptionList.OptionSelected)
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)
