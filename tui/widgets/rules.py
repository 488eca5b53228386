"""The rules screen: the active rules, how often each matched and acted, each switchable.

It reads the relay's :class:`~proxy.core.rules.RuleSet` and redraws when the set's
``generation`` moves (every match, toggle or reload bumps it), a few times a second.
Space or Enter switches the highlighted rule on or off; the relay sees it at once
(it asks the same set for every message).
"""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Footer, Static

from proxy.core.rules import RuleSet

REFRESH = 0.25  # seconds between looks at the counts


class RulesScreen(ModalScreen[None]):
    """Shown over the timeline; Esc or q closes it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("space,enter", "switch", "On/off"),
        Binding("escape,q,l", "dismiss", "Close"),
    ]

    DEFAULT_CSS = """
    RulesScreen { align: center middle; }
    RulesScreen > Vertical {
        width: 95%; max-width: 120; height: auto; max-height: 90%;
        border: round $primary; background: $surface;
    }
    RulesScreen #rules-about { padding: 0 1; height: auto; color: $text-muted; }
    RulesScreen DataTable { height: auto; max-height: 30; }
    """

    def __init__(self, rules: RuleSet) -> None:
        super().__init__()
        self.rules = rules
        self.table: DataTable[Text | str] = DataTable(
            id="rules-table", cursor_type="row", zebra_stripes=True
        )
        self._shown = -1

    def compose(self) -> ComposeResult:
        with Vertical() as box:
            box.border_title = "Rules"
            box.border_subtitle = "Space on/off · Esc close"
            if not self.rules:
                yield Static(
                    "No rules. Start with --rule 'MATCH -> ACTION' (repeatable) or "
                    "--rules FILE, e.g. --rule 'cb:21 dir:outlet -> drop'.",
                    id="rules-about",
                )
            else:
                yield Static(
                    "matched: the rule's MATCH held; applied: it acted (once/times/after "
                    "limit it). The first enabled rule that acts on a message wins.",
                    id="rules-about",
                )
                yield self.table
        yield Footer()

    def on_mount(self) -> None:
        table = self.table
        table.add_column("#", key="number")
        table.add_column("on", key="on")
        table.add_column("matched", key="matched")
        table.add_column("applied", key="applied")
        table.add_column("rule", key="rule")
        self.redraw()
        self.set_interval(REFRESH, self.redraw)
        table.focus()

    def redraw(self) -> None:
        """Rebuild the rows if anything changed since they were drawn."""
        if self.rules.generation == self._shown:
            return
        self._shown = self.rules.generation
        table = self.table
        row = table.cursor_row
        table.clear()
        for rule in self.rules.rules:
            state = Text("on", style="bold green") if rule.enabled else Text("off", style="dim")
            text = Text(rule.text, style="" if rule.enabled else "dim")
            if rule.spent:
                text.append("  (limit used up)", style="dim")
            if rule.source:
                text.append(f"  [{rule.source}]", style="dim")
            table.add_row(
                str(rule.number), state, f"{rule.matched:,}", f"{rule.applied:,}", text,
                key=str(rule.number),
            )  # fmt: skip
        if self.rules.rules:
            table.move_cursor(row=min(row, len(self.rules.rules) - 1))

    def action_switch(self) -> None:
        if not self.rules.rules:
            return
        rule = self.rules.rules[self.table.cursor_row]
        enabled = self.rules.toggle(rule.number)
        self.redraw()
        self.notify(f"{rule.label} is {'on' if enabled else 'off'}", timeout=2)
