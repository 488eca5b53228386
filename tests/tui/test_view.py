"""RowView: filtered positions, incremental sync within a budget, message -> row map."""

from __future__ import annotations

from proxy.core.filter import Filter
from proxy.core.model import Row
from tests.tui.test_filter import MESSAGES, ROWS, text_of
from tui.view import MessageRows, RowView


def test_identity_view_follows_growing_rows() -> None:
    rows: list[Row] = list(ROWS[:3])
    view = RowView(rows, MESSAGES, text_of)
    assert view.sync()
    assert len(view) == 3 and view.row_index(2) == 2
    rows.extend(ROWS[3:])
    view.sync()
    assert len(view) == len(ROWS)
    assert view.position_of(len(ROWS) - 1) == len(ROWS) - 1


def test_filtered_view_maps_positions_both_ways() -> None:
    view = RowView(ROWS, MESSAGES, text_of, Filter.parse("conn:c2"))
    view.sync()
    assert [ROWS[view.row_index(p)].ref for p in range(len(view))] == [3, 4, -1]
    assert view.position_of(ROWS.index(ROWS[5])) == 1
    assert view.position_of(0) is None
    assert view.nearest_position(1) == 0
    assert view.nearest_position(100) == len(view) - 1


def test_session_restricts_to_its_messages() -> None:
    view = RowView(ROWS, MESSAGES, text_of, None, frozenset({2, 4}))
    view.sync()
    assert [ROWS[view.row_index(p)].ref for p in range(len(view))] == [2, 4]


def test_sync_with_zero_budget_makes_progress_and_finishes() -> None:
    many: list[Row] = [Row(float(i), "message", "c1", i % len(MESSAGES)) for i in range(20_000)]
    view = RowView(many, MESSAGES, text_of, Filter.parse("cb:22"))
    assert not view.sync(budget=0.0)
    assert 0 < view.scanned < len(many)
    while not view.sync(budget=0.0):
        pass
    assert len(view) == sum(1 for r in many if MESSAGES[r.ref].callback == 22)


def test_message_rows_maps_every_message_to_its_row() -> None:
    index = MessageRows(ROWS)
    index.sync()
    for i, row in enumerate(ROWS):
        if row.ref >= 0:
            assert index.row_of(row.ref) == i
    assert index.row_of(99) is None
