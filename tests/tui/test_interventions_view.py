"""What the TUI shows of interventions (issue 10 item 4): the detail says what was done
and why, with both versions of a changed message; the timeline marks the row; the OTA
panel gives the app's outcome when it differs from the outlet's."""

from __future__ import annotations

import re

from tests.tui.conftest import line_texts, on_screen, wait_until
from tui.app import InvisApp

SET = "cb:23 arg.0:1 arg.1:1 -> set payload.callbackArgs.1=0"


def detail_text(app: InvisApp) -> str:
    """The detail pane's lines as drawn (the whole body, not only the part in view)."""
    body = app.detail.body
    return "\n".join(body.render_line(y).text.rstrip() for y in range(body.size.height))


def squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


async def show(app: InvisApp, pilot: object, msg_id: int) -> None:
    ri = app.timeline.message_rows.row_of(msg_id)
    assert ri is not None and app.timeline.select_row_index(ri)
    await wait_until(pilot, lambda: app.detail.row_index == ri)  # type: ignore[arg-type]


async def test_the_detail_says_what_was_changed_and_shows_both_versions() -> None:
    async with on_screen("rule_success_to_failure", (100, 40)) as (app, pilot):
        await show(app, pilot, 5)
        text = detail_text(app)
        assert f"changed by rule 1: {SET}" in text
        # long lines wrap in the pane: compare without the white space
        flat = squash(text)
        received = '{"sn":"11B27540076","packetID":900005,"payload":{"callbackName":23,'
        assert squash(f'received: {received}"callbackArgs":[1,1]}}}}forwarded: ') in flat
        assert squash(f'forwarded: {received}"callbackArgs":[1,0]}}}}Fields') in flat
        assert "succeeded (app saw: failed)" in text


async def test_the_detail_says_what_was_dropped_and_by_which_rule() -> None:
    async with on_screen("rule_progress_stops", (100, 40)) as (app, pilot):
        await show(app, pilot, 4)
        text = detail_text(app)
        assert "dropped by rule 1: cb:22 arg.1:40-100 -> drop" in text
        assert "received:" not in text  # nothing was forwarded instead
        await show(app, pilot, 3)
        assert "Intervention" not in detail_text(app)


async def test_the_timeline_marks_intervened_rows_beside_the_arrow() -> None:
    async with on_screen("rule_progress_stops", (80, 24)) as (app, _pilot):
        texts = line_texts(app)
        dropped = [t for t in texts if "←⊘" in t]
        plain = [t for t in texts if "← " in t]
        assert len(dropped) == 3, texts  # the 40, 70 and 100 % progress pushes
        assert all("OTA progress" in t or "progress" in t.lower() for t in dropped)
        assert plain  # the forwarded ones keep a space


async def test_the_ota_panel_gives_the_apps_outcome_when_it_differs() -> None:
    async with on_screen("rule_success_to_failure", (100, 40)) as (app, pilot):
        await wait_until(pilot, lambda: app.ota.option_count == 1)
        prompt = app.ota.get_option_at_index(0).prompt
        assert "succeeded · app saw failed" in str(prompt)
