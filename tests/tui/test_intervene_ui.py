"""The intervention commands of the TUI over a real ``Interventions`` on a recording wire.

The relay is replaced by :class:`RecordingWire`, which keeps what it is asked to send
and pushes what it is asked to record into the app's live source, as the relay does.
Everything else (gates, queues, held messages, the rules) is the real code, so these
are honest tests of the UI logic; tests/tui/test_intervene_live.py drives a real relay.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from textual.pilot import Pilot
from textual.widgets import TextArea

from proxy.core.events import Data, Open
from proxy.core.rules import RuleSet, parse_rule
from tests.tui.conftest import source_app, wait_until
from tests.tui.live_helpers import Control, RecordingWire, app_sends, frame
from tui.app import InvisApp
from tui.sources import IterSource, LiveSource
from tui.widgets.choice import ChoiceScreen
from tui.widgets.editor import EditorScreen
from tui.widgets.rules import RulesScreen

SIZE = (100, 30)


@asynccontextmanager
async def live_app(
    rules: RuleSet | None = None,
) -> AsyncIterator[tuple[InvisApp, Pilot[None], Control]]:
    source = LiveSource("test")
    wire = RecordingWire(source)
    control = Control(wire, rules)
    source.control = control
    app = source_app(source)
    async with app.run_test(size=SIZE) as pilot:
        wire.emit(Open(time.time(), "c1", "tcp", "127.0.0.1:5000", "outlet:3333"))
        control.interventions.opened("c1", "tcp")
        await wait_until(pilot, lambda: len(app.analysis.rows) == 1)
        yield app, pilot, control


def status(app: InvisApp) -> str:
    return str(app.status.render())


async def intercept(pilot: Pilot[None], expression: str) -> None:
    await pilot.press("i", *expression, "enter")


async def hold_one(app: InvisApp, pilot: Pilot[None], control: Control, data: bytes) -> None:
    assert app_sends(control, data) == b""
    await wait_until(pilot, lambda: app.held_panel.display and len(app.held_panel.held) == 1)


async def hold_cb21(app: InvisApp, pilot: Pilot[None], control: Control) -> None:
    """Intercept cb21 and hold the app's cb21 222222 [1, 0]."""
    await intercept(pilot, "cb:21")
    await hold_one(app, pilot, control, frame(21, 222222, [1, 0]))


async def edit_held_cb21(app: InvisApp, pilot: Pilot[None], control: Control) -> EditorScreen:
    """Hold an app's cb21 and open the editor on it with ``e``."""
    await hold_cb21(app, pilot, control)
    await pilot.press("e")
    await wait_until(pilot, lambda: isinstance(app.screen, EditorScreen))
    editor = app.screen
    assert isinstance(editor, EditorScreen)
    return editor


async def quit_with_cb21_held(app: InvisApp, pilot: Pilot[None], control: Control) -> None:
    """Hold an app's cb21 and press ``q``: the app asks what to do with it."""
    await hold_cb21(app, pilot, control)
    await pilot.press("q")
    await wait_until(pilot, lambda: isinstance(app.screen, ChoiceScreen))


async def test_intercept_holds_marks_and_counts_then_a_forwards() -> None:
    async with live_app() as (app, pilot, control):
        await intercept(pilot, "cb:21")
        assert control.interventions.intercept is not None
        assert control.interventions.intercept.expression == "cb:21"
        assert "intercept: cb:21" in status(app)
        # a message the filter does not match flows on
        assert app_sends(control, frame(3, 111111)) == frame(3, 111111)
        await hold_one(app, pilot, control, frame(21, 222222, [1, 0]))
        line = app.held_panel.get_option_at_index(0).prompt
        assert "⏸ HELD" in str(line) and "cb21" in str(line)
        assert "1 held" in status(app)
        await pilot.press("a")
        await wait_until(pilot, lambda: not app.held_panel.display)
        assert ("c1", "outlet", frame(21, 222222, [1, 0])) in control.wire.sent
        record = control.wire.events[-1]
        assert isinstance(record, Data) and record.intervention is not None
        assert (record.intervention.action, record.intervention.by) == ("hold", "user")
        assert "held" not in status(app)


async def test_x_drops_and_the_drop_is_recorded() -> None:
    async with live_app() as (app, pilot, control):
        await hold_cb21(app, pilot, control)
        await pilot.press("x")
        await wait_until(pilot, lambda: not app.held_panel.display)
        assert all(pid not in data for _, _, data in control.wire.sent for pid in [b"222222"])
        record = control.wire.events[-1]
        assert isinstance(record, Data) and record.intervention is not None
        assert (record.intervention.action, record.intervention.by) == ("drop", "user")


async def test_forward_all_lets_every_held_message_go_in_order() -> None:
    async with live_app() as (app, pilot, control):
        await intercept(pilot, "cb:21-23")
        app_sends(control, frame(21, 100001, [1, 0]))
        app_sends(control, frame(22, 100002, [1, 5]))
        await wait_until(pilot, lambda: len(app.held_panel.held) == 2)
        assert "2 held" in status(app)
        await pilot.press("A")
        await wait_until(pilot, lambda: not app.held_panel.display)
        sent = b"".join(data for _, to, data in control.wire.sent if to == "outlet")
        assert sent == frame(21, 100001, [1, 0]) + frame(22, 100002, [1, 5])


async def test_edit_valid_json_is_forwarded_compactly() -> None:
    async with live_app() as (app, pilot, control):
        editor = await edit_held_cb21(app, pilot, control)
        area = editor.query_one(TextArea)
        assert json.loads(area.text) == json.loads(frame(21, 222222, [1, 0]))
        area.text = (
            '{ "packetID": 222222,\n  "payload": {"callbackName": 21, "callbackArgs": [2, 1]} }'
        )
        await pilot.pause()
        assert editor.problem is None
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: not app.held_panel.display)
        expected = b'{"packetID":222222,"payload":{"callbackName":21,"callbackArgs":[2,1]}}\n'
        assert ("c1", "outlet", expected) in control.wire.sent
        record = control.wire.events[-1]
        assert isinstance(record, Data) and record.intervention is not None
        assert record.intervention.action == "edit"
        assert record.original == frame(21, 222222, [1, 0])


async def test_edit_with_invalid_json_cannot_be_sent() -> None:
    async with live_app() as (app, pilot, control):
        editor = await edit_held_cb21(app, pilot, control)
        editor.query_one(TextArea).text = '{"packetID": 222222, "payload": '
        await pilot.pause()
        assert editor.problem is not None
        assert "not valid JSON" in str(editor.check.render())
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert app.screen is editor  # still editing: nothing sent
        assert len(control.interventions.held()) == 1
        assert not any(b"222222" in data for _, _, data in control.wire.sent)
        await pilot.press("escape")
        await wait_until(pilot, lambda: not isinstance(app.screen, EditorScreen))
        assert len(control.interventions.held()) == 1  # cancelling keeps it held


async def test_e_exports_when_nothing_is_held(tmp_path: Path) -> None:
    async with live_app() as (app, pilot, _control):
        assert not app.check_action("held_edit", ())
        app.exporter.export_dir = tmp_path
        await pilot.press("e")
        await wait_until(pilot, lambda: any(tmp_path.iterdir()))
        assert not isinstance(app.screen, EditorScreen)


async def test_a_bad_intercept_filter_shows_its_column_and_is_not_set() -> None:
    async with live_app() as (app, pilot, control):
        await intercept(pilot, "cb:21 and (")
        error = app.query_one("#query-error")
        assert error.display
        assert "column" in str(error.render())
        assert control.interventions.intercept is None
        await pilot.press("escape")


async def test_quit_with_held_messages_asks_and_cancel_keeps_them() -> None:
    async with live_app() as (app, pilot, control):
        await quit_with_cb21_held(app, pilot, control)
        await pilot.press("down", "down", "enter")  # cancel
        await wait_until(pilot, lambda: not isinstance(app.screen, ChoiceScreen))
        assert app.is_running and len(control.interventions.held()) == 1
        await pilot.press("q")
        await wait_until(pilot, lambda: isinstance(app.screen, ChoiceScreen))
        await pilot.press("enter")  # forward all, then quit
        await wait_until(pilot, lambda: not app.is_running)
        assert ("c1", "outlet", frame(21, 222222, [1, 0])) in control.wire.sent


async def test_quit_and_drop_all_records_each_as_dropped() -> None:
    async with live_app() as (app, pilot, control):
        await quit_with_cb21_held(app, pilot, control)
        await pilot.press("down", "enter")  # drop all
        await wait_until(pilot, lambda: not app.is_running)
        record = control.wire.events[-1]
        assert isinstance(record, Data) and record.intervention is not None
        assert (record.intervention.action, record.intervention.by) == ("drop", "user")


async def test_rules_screen_lists_counts_and_toggles_the_rule_the_relay_uses() -> None:
    rules = RuleSet([parse_rule("cb:22 -> drop", 1)])
    async with live_app(rules) as (app, pilot, control):
        app_sends(control, frame(22, 100002, [1, 5]))
        await pilot.press("l")
        await wait_until(pilot, lambda: isinstance(app.screen, RulesScreen))
        screen = app.screen
        assert isinstance(screen, RulesScreen)
        row = screen.table.get_row_at(0)
        assert [str(c) for c in row[:4]] == ["1", "on", "1", "1"]
        await pilot.press("space")
        assert not rules.rules[0].enabled
        await wait_until(pilot, lambda: str(screen.table.get_row_at(0)[1]) == "off")
        # switched off: the relay forwards the next cb22
        assert app_sends(control, frame(22, 100003, [1, 6])) == frame(22, 100003, [1, 6])
        await pilot.press("escape")


async def test_inject_to_outlet_prefills_from_the_catalog_with_a_fresh_packet_id() -> None:
    async with live_app() as (app, pilot, control):
        app_sends(control, frame(3, 111111))
        await wait_until(pilot, lambda: app.timeline.current_message is not None)
        await app.run_action("inject_outlet")
        await wait_until(pilot, lambda: isinstance(app.screen, ChoiceScreen))
        choice = app.screen
        assert isinstance(choice, ChoiceScreen)
        ids = [key for key, _ in choice.options]
        await pilot.press(*["down"] * ids.index("20"), "enter")  # cb20
        await wait_until(pilot, lambda: isinstance(app.screen, EditorScreen))
        editor = app.screen
        assert isinstance(editor, EditorScreen)
        value = json.loads(editor.query_one(TextArea).text)
        assert value["payload"] == {"callbackName": 20}
        pid = value["packetID"]
        assert isinstance(pid, int) and 100000 <= pid <= 999999 and pid != 111111
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: bool(control.injected))
        conn, to, data = control.injected[0]
        assert (conn, to) == ("c1", "outlet")
        assert data == json.dumps(value, separators=(",", ":")).encode() + b"\n"


async def test_a_replayed_capture_says_intercept_and_inject_need_a_live_proxy() -> None:
    app = source_app(IterSource([], label="file"))
    async with app.run_test(size=SIZE) as pilot:
        for key in ("i", "a", "l"):
            await pilot.press(key)
            await pilot.pause()
            assert not isinstance(app.screen, RulesScreen)
        await app.run_action("inject_outlet")
        await pilot.pause()
        texts = [n.message for n in app._notifications]
        assert sum("needs a live proxy" in t for t in texts) == 4
