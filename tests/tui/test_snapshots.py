"""SVG snapshots of the main screens at 80x24 and 160x50 (relative time: no clocks).

Update after a deliberate change with ``pytest tests/tui/test_snapshots.py
--snapshot-update`` and look at the SVGs in ``__snapshots__``.
"""

from __future__ import annotations

from typing import Any

from textual.pilot import Pilot

from tests.tui.conftest import loaded, scenario_app, wait_until


async def _select_cb21(pilot: Pilot[Any]) -> None:
    app = await loaded(pilot)
    request = next(m.id for m in app.analysis.messages if m.callback == 21)
    row = app.timeline.message_rows.row_of(request)
    assert row is not None
    app.timeline.select_row_index(row)
    await pilot.pause()


async def _filtered(pilot: Pilot[Any]) -> None:
    app = await loaded(pilot)
    await pilot.press("f", *"cb:21-23 and not kind:push", "enter")
    await wait_until(pilot, lambda: app.timeline.view.complete)


async def _bad_filter(pilot: Pilot[Any]) -> None:
    await loaded(pilot)
    await pilot.press("f", *"cb:21 and (", "enter")


async def _help(pilot: Pilot[Any]) -> None:
    await loaded(pilot)
    await pilot.press("question_mark")


def test_main_80x24(snap_compare: Any) -> None:
    app = scenario_app("revb_outlet_tcp")
    assert snap_compare(app, terminal_size=(80, 24), run_before=_select_cb21)


def test_main_160x50(snap_compare: Any) -> None:
    app = scenario_app("concurrent_outlet_and_deco")
    assert snap_compare(app, terminal_size=(160, 50), run_before=_select_cb21)


def test_filtered_80x24(snap_compare: Any) -> None:
    app = scenario_app("reva_outlet_ws")
    assert snap_compare(app, terminal_size=(80, 24), run_before=_filtered)


def test_bad_filter_80x24(snap_compare: Any) -> None:
    app = scenario_app("reva_outlet_ws")
    assert snap_compare(app, terminal_size=(80, 24), run_before=_bad_filter)


def test_help_80x24(snap_compare: Any) -> None:
    app = scenario_app("reva_outlet_ws")
    assert snap_compare(app, terminal_size=(80, 24), run_before=_help)


def test_help_160x50(snap_compare: Any) -> None:
    app = scenario_app("reva_outlet_ws")
    assert snap_compare(app, terminal_size=(160, 50), run_before=_help)
