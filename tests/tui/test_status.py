"""The status line: fitted to its width, least important parts first, "redact: OFF" always."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from rich.cells import cell_len

from tests.tui.conftest import filter_by, on_screen, wait_until
from tui.app import InvisApp
from tui.status import ELLIPSIS, SEPARATOR, Part, crop, fit, fitted, status_parts

LONG_FILTER = "cb:21-23 and not kind:push and not ann:spurious-ota-result and conn:c1"

# texts without the separator's bar, so the fitted line splits back into its parts
texts = st.text(st.characters(blacklist_characters="│", blacklist_categories=("Cs", "Cc")))
parts_lists = st.lists(
    st.builds(
        Part,
        text=texts.filter(bool),
        rank=st.integers(0, 100),
        short=st.none() | texts.filter(bool),
        keep=st.booleans(),
        elastic=st.booleans(),
    ),
    max_size=8,
)


def minimum(parts: list[Part]) -> int:
    """Cells the kept parts need at least: compact forms, elastic ones down to "…"."""
    kept = [p for p in parts if p.keep]
    cells = [1 if p.elastic else cell_len(p.short or p.text) for p in kept]
    return sum(cells) + cell_len(SEPARATOR) * max(len(kept) - 1, 0)


@given(parts_lists, st.integers(0, 200))
def test_a_line_that_fits_is_left_as_it_is(parts: list[Part], width: int) -> None:
    full = SEPARATOR.join(p.text for p in parts)
    if cell_len(full) <= width:
        assert fit(parts, width) == full


@given(parts_lists, st.integers(0, 200))
def test_the_line_fits_whenever_the_kept_parts_can(parts: list[Part], width: int) -> None:
    line = fit(parts, width)
    if width >= minimum(parts):
        assert cell_len(line) <= width, (line, width)


@given(parts_lists, st.integers(0, 200))
def test_parts_keep_their_forms_kept_ones_stay_and_low_ranks_go_first(
    parts: list[Part], width: int
) -> None:
    shown = fitted(parts, width)
    assert fit(parts, width) == SEPARATOR.join(t for t in shown if t is not None)
    for part, text in zip(parts, shown, strict=True):
        if text is None:
            assert not part.keep
            # dropped only after every droppable part of a lower rank
            for other, other_text in zip(parts, shown, strict=True):
                if not other.keep and other.rank < part.rank:
                    assert other_text is None
        elif text not in (part.text, part.short):
            assert part.elastic and text.endswith(ELLIPSIS)
            assert any(f.startswith(text[:-1]) for f in (part.text, part.short) if f)


@given(texts, st.integers(1, 80))
def test_crop_cuts_to_the_cells_with_an_ellipsis(text: str, cells: int) -> None:
    cut = crop(text, cells)
    assert cell_len(cut) <= cells
    assert cut == text or (cut.endswith(ELLIPSIS) and text.startswith(cut[:-1]))


def facts(**changes: object) -> dict[str, object]:
    base: dict[str, object] = {
        "messages": 22,
        "shown": 2,
        "filtering": False,
        "expression": "cb:21-23 and not kind:push",
        "ota_session": None,
        "streaming": True,
        "following": False,
        "new_rows": 1234,
        "time_mode": "relative",
        "redacting": True,
        "progress": "",
        "rate": "",
        "problems": 0,
    }
    return base | changes


def test_redaction_off_is_shown_in_full_at_any_width_that_holds_it() -> None:
    parts = status_parts(**facts(redacting=False, expression=LONG_FILTER))  # type: ignore[arg-type]
    for width in range(minimum(parts), 200):
        line = fit(parts, width)
        assert "redact: OFF" in line.split(SEPARATOR), (width, line)
        assert cell_len(line) <= width


def test_at_80_columns_a_filter_drops_the_time_mode_before_anything_else() -> None:
    parts = status_parts(**facts(streaming=False))  # type: ignore[arg-type]
    assert fit(parts, 78) == "22 msgs │ 2 shown │ filter: cb:21-23 and not kind:push │ redact: on"
    assert "time: relative" in fit(parts, 118)


def status_line(app: InvisApp) -> str:
    """The status bar's line as painted (the widget cuts what does not fit)."""
    return app.status.render_line(0).text.rstrip()


async def test_the_status_bar_keeps_filter_and_redaction_readable_at_80x24() -> None:
    async with on_screen("reva_outlet_ws") as (app, pilot):
        await filter_by(pilot, "cb:21-23 and not kind:push")
        line = status_line(app)
        assert "filter: cb:21-23 and not kind:push" in line
        assert line.endswith("redact: on"), line
        assert cell_len(str(app.status.render())) <= app.status.content_size.width
        # a long filter is cut, and redaction turned off still shows, in full
        await pilot.press("R", "f", "ctrl+u", *LONG_FILTER, "enter")
        await wait_until(pilot, lambda: app.timeline.view.complete)
        line = status_line(app)
        assert app.query_bar.mode is None, "the long filter was applied"
        assert line.endswith("… │ redact: OFF"), line
        assert "filter: cb:21-23 and not kind:push and not" in line


async def test_the_status_bar_refits_when_the_terminal_is_resized() -> None:
    async with on_screen("reva_outlet_ws") as (app, pilot):
        await filter_by(pilot, "cb:21-23 and not kind:push")
        assert "time:" not in status_line(app)
        await pilot.resize_terminal(160, 24)
        await wait_until(pilot, lambda: "time: relative" in status_line(app))
        await pilot.resize_terminal(50, 24)
        await wait_until(pilot, lambda: status_line(app).endswith("… │ redact ✓"))
        assert cell_len(status_line(app)) <= 48
