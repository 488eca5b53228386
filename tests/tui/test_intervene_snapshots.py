"""SVG snapshots of the rules screen and the JSON editor at 80x24 (a fixed clock).

New files only: the main screens' snapshots (test_snapshots.py) do not change. Update
after a deliberate change with ``--snapshot-update`` and look at the SVGs.
"""

from __future__ import annotations

import itertools
from typing import Any

from textual.pilot import Pilot

from proxy.core.events import Open
from proxy.core.rules import RuleSet, parse_rule
from tests.tui.conftest import source_app, wait_until
from tests.tui.live_helpers import Control, RecordingWire, app_sends, frame
from tui.sources import LiveSource
from tui.widgets.editor import EditorScreen
from tui.widgets.rules import RulesScreen

T0 = 1_700_000_000.0


def _live(rules: RuleSet | None = None) -> tuple[Any, Control]:
    ticks = itertools.count()
    clock = lambda: T0 + next(ticks) * 0.125  # noqa: E731 - a fixed, moving clock
    source = LiveSource("snapshot")
    control = Control(RecordingWire(source, clock), rules)
    source.control = control
    return source_app(source, clock=lambda: T0 + 10.0), control


def test_rules_screen_80x24(snap_compare: Any) -> None:
    rules = RuleSet(
        [
            parse_rule("cb:21 dir:app -> reply puback=0", 1),
            parse_rule("cb:22 arg.1:40-100 -> drop", 2),
            parse_rule("cb:22 arg.1:50-100 -> close once", 3),
        ]
    )
    app, control = _live(rules)

    async def before(pilot: Pilot[Any]) -> None:
        control.wire.emit(Open(T0, "c1", "tcp", "127.0.0.1:5000", "outlet:3333"))
        control.interventions.opened("c1", "tcp")
        for pid, percent in ((100001, 10), (100002, 45), (100003, 60)):
            app_sends(control, frame(22, pid, [1, percent]))
        rules.toggle(3)
        await wait_until(pilot, lambda: len(app.analysis.messages) == 3)
        await pilot.press("l")
        await wait_until(pilot, lambda: isinstance(app.screen, RulesScreen))

    assert snap_compare(app, terminal_size=(80, 24), run_before=before)


def test_editor_80x24(snap_compare: Any) -> None:
    app, control = _live()

    async def before(pilot: Pilot[Any]) -> None:
        control.wire.emit(Open(T0, "c1", "tcp", "127.0.0.1:5000", "outlet:3333"))
        control.interventions.opened("c1", "tcp")
        await wait_until(pilot, lambda: len(app.analysis.rows) == 1)
        await pilot.press("i", *"cb:21", "enter")
        app_sends(control, frame(21, 414883, [1, 0]))
        await wait_until(pilot, lambda: len(app.held_panel.held) == 1)
        await pilot.press("e")
        await wait_until(pilot, lambda: isinstance(app.screen, EditorScreen))

    assert snap_compare(app, terminal_size=(80, 24), run_before=before)
