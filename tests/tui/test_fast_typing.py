"""Keys that arrive together (typed fast, pasted, sent by tmux) reach the widget the
previous key opened: Textual's Widget.focus() moves the focus only after the keys
already queued, which then went to the timeline."""

from __future__ import annotations

from textual import events
from textual.widgets import TextArea

from tests.tui.conftest import line_texts, loaded, scenario_app, wait_until
from tests.tui.test_intervene_ui import edit_held_cb21, live_app
from tui.app import InvisApp

SIZE = (120, 40)


def status_text(app: InvisApp) -> str:
    return app.status.render_line(0).text


def type_at_once(app: InvisApp, keys: str | list[str]) -> None:
    """Queue every key before the app handles the first, as a terminal read does (a
    character, "\n" for Enter, or a key name such as "ctrl+u")."""
    for key in keys:
        if key == "\n":
            event = events.Key("enter", "\r")
        elif len(key) == 1:
            event = events.Key(key, key)
        else:
            event = events.Key(key, None)
        event.set_sender(app)  # as the driver sends it
        app.post_message(event)


async def test_a_filter_typed_at_once_after_f_is_applied() -> None:
    app = scenario_app("revb_outlet_tcp")
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        type_at_once(app, "fcb:21\n")
        await wait_until(pilot, lambda: app.query_bar.mode is None)
        await wait_until(pilot, lambda: "filter: cb:21" in status_text(app))
        assert app.focused is app.timeline
        assert all(" 21 " in line for line in line_texts(app) if line.strip())


async def test_keys_typed_at_once_after_enter_reach_the_timeline_again() -> None:
    app = scenario_app("revb_outlet_tcp")
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        type_at_once(app, "fcb:21\nf")  # the second f opens the bar again, empty of typing
        await wait_until(pilot, lambda: app.query_bar.mode == "filter")
        assert app.query_bar.field.value == "cb:21"  # reopened with the filter in use


async def test_ctrl_u_typed_at_once_clears_only_what_was_typed_before_it() -> None:
    app = scenario_app("revb_outlet_tcp")
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        type_at_once(app, ["f", *"cb:21", "ctrl+u", *"cb:22", "\n"])
        await wait_until(pilot, lambda: "filter: cb:22" in status_text(app))
        assert all(" 22 " in line for line in line_texts(app) if line.strip())


async def test_a_command_key_typed_into_the_query_line_is_a_character() -> None:
    app = scenario_app("revb_outlet_tcp")
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        type_at_once(app, "f" + "fsi/")  # f s i / are commands that move the focus
        await wait_until(pilot, lambda: app.query_bar.field.value == "fsi/")
        assert app.query_bar.mode == "filter" and app.focused is app.query_bar.field


async def test_the_editor_sends_what_was_typed_just_before_ctrl_s() -> None:
    """Ctrl+S is a priority binding: it acted before the characters typed with it."""
    async with live_app() as (app, pilot, control):
        editor = await edit_held_cb21(app, pilot, control)
        area = editor.query_one(TextArea)
        area.text = '{"packetID": 222222, "payload": {"callbackName": 21, "callbackArgs": [2, 1]'
        area.move_cursor(area.document.end)
        await pilot.pause()
        type_at_once(app, [*"}}", "ctrl+s"])
        await wait_until(pilot, lambda: not app.held_panel.display)
        expected = b'{"packetID":222222,"payload":{"callbackName":21,"callbackArgs":[2,1]}}\n'
        assert ("c1", "outlet", expected) in control.wire.sent


async def test_a_paste_right_after_f_lands_in_the_filter_line() -> None:
    app = scenario_app("revb_outlet_tcp")
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        type_at_once(app, "f")
        paste = events.Paste("cb:21")
        paste.set_sender(app)
        app.post_message(paste)
        type_at_once(app, "\n")
        await wait_until(pilot, lambda: "filter: cb:21" in status_text(app))
