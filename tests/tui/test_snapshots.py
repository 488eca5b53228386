"""SVG snapshots of the main screens at 80x24 and 160x50 (relative time: no clocks).

Update after a deliberate change with ``pytest tests/tui/test_snapshots.py
--snapshot-update`` and look at the SVGs in ``__snapshots__``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from textual.pilot import Pilot

from tests.tui.conftest import filter_by, loaded, scenario_app


async def _select_cb21(pilot: Pilot[Any]) -> None:
    app = await loaded(pilot)
    request = next(m.id for m in app.analysis.messages if m.callback == 21)
    row = app.timeline.message_rows.row_of(request)
    assert row is not None
    app.timeline.select_row_index(row)
    await pilot.pause()


async def _filtered(pilot: Pilot[Any]) -> None:
    await loaded(pilot)
    await filter_by(pilot, "cb:21-23 and not kind:push")


async def _bad_filter(pilot: Pilot[Any]) -> None:
    await loaded(pilot)
    await pilot.press("f", *"cb:21 and (", "enter")


async def _help(pilot: Pilot[Any]) -> None:
    await loaded(pilot)
    await pilot.press("question_mark")


Before = Callable[[Pilot[Any]], Awaitable[None]]

SHOTS: dict[str, tuple[str, tuple[int, int], Before]] = {
    "test_main_80x24": ("revb_outlet_tcp", (80, 24), _select_cb21),
    "test_main_160x50": ("concurrent_outlet_and_deco", (160, 50), _select_cb21),
    "test_filtered_80x24": ("reva_outlet_ws", (80, 24), _filtered),
    "test_bad_filter_80x24": ("reva_outlet_ws", (80, 24), _bad_filter),
    "test_help_80x24": ("reva_outlet_ws", (80, 24), _help),
    "test_help_160x50": ("reva_outlet_ws", (160, 50), _help),
}
"""Test name (it names the SVG in __snapshots__) -> scenario, terminal size, what to do first.

Named tests rather than a parametrized one, because the parameters would rename the SVGs."""


def _snapshot_test(name: str, scenario: str, size: tuple[int, int], before: Before) -> Any:
    def test(snap_compare: Any) -> None:
        assert snap_compare(scenario_app(scenario), terminal_size=size, run_before=before)

    test.__name__ = test.__qualname__ = name
    return test


for _name, _shot in SHOTS.items():
    globals()[_name] = _snapshot_test(_name, *_shot)
