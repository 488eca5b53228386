"""The timeline's callback name column grows with the screen instead of cutting names."""

from __future__ import annotations

import pytest

from tests.tui.conftest import line_texts, loaded, scenario_app
from tui.widgets.timeline import NAME_COLUMN_MAX, NAME_COLUMN_MIN_WIDTH, name_column_width


@pytest.mark.parametrize(
    ("width", "expected"),
    [
        (NAME_COLUMN_MIN_WIDTH - 1, 0),
        (NAME_COLUMN_MIN_WIDTH, 18),
        (120, 23),
        (500, NAME_COLUMN_MAX),
    ],
)
def test_the_name_column_is_absent_then_grows_then_stops(width: int, expected: int) -> None:
    assert name_column_width(width) == expected


async def test_a_wide_screen_shows_the_callback_names_whole() -> None:
    app = scenario_app("concurrent_outlet_and_deco")
    async with app.run_test(size=(200, 55)) as pilot:
        await loaded(pilot)
        text = "\n".join(line_texts(app))
        for name in (
            "Request available updates",
            "OTA download progress",
            "Get device information",
        ):
            assert f" {name} " in text


async def test_a_narrow_screen_has_no_name_column() -> None:
    app = scenario_app("concurrent_outlet_and_deco")
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot)
        assert not any("Get device information" in line for line in line_texts(app))
