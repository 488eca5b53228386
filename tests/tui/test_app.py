"""Pilot tests: every action of the TUI on real scenario traces, at 80x24.

Over 500 lines because it holds one test per action, all on the few pilot helpers at the
top; split by action, each part would only repeat them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from textual.binding import Binding
from textual.pilot import Pilot

from proxy.core.events import Close, Data, Open
from proxy.store.recording import load_events
from tests.tui.conftest import (
    filter_by,
    line_texts,
    loaded,
    on_screen,
    scenario_events,
    source_app,
    wait_until,
)
from tui import commands
from tui.app import InvisApp
from tui.sources import FileSource, IterSource, LiveSource, PlaySource, Sink, Source
from tui.widgets.help import HelpScreen

SIZE = (80, 24)


def first(app: InvisApp, cb: int, kind: str | None = None) -> int:
    """The id of the first message with this callback (and kind)."""
    return next(
        m.id for m in app.analysis.messages if m.callback == cb and (kind is None or m.kind == kind)
    )


async def select_message(app: InvisApp, pilot: object, msg_id: int) -> None:
    ri = app.timeline.message_rows.row_of(msg_id)
    assert ri is not None
    assert app.timeline.select_row_index(ri)
    await pilot.pause()  # type: ignore[attr-defined]


async def select_first(app: InvisApp, pilot: object, cb: int, kind: str | None = None) -> int:
    """Put the cursor on the first message with this callback (and kind); its id."""
    msg_id = first(app, cb, kind)
    await select_message(app, pilot, msg_id)
    return msg_id


def status(app: InvisApp) -> str:
    return str(app.query_one("#status").render())


async def shown_refs(app: InvisApp, pilot: Pilot[None]) -> list[int]:
    """The messages the timeline shows, once its narrowed view is complete."""
    await wait_until(pilot, lambda: app.timeline.view.complete)
    view = app.timeline.view
    return [app.analysis.rows[view.row_index(p)].ref for p in range(len(view))]


async def escape_shows_every_row(app: InvisApp, pilot: Pilot[None]) -> None:
    await pilot.press("escape")
    assert len(app.timeline.view) == len(app.analysis.rows)


async def test_file_loads_every_row_and_selects_the_first() -> None:
    async with on_screen("reva_outlet_ws") as (app, _):
        assert len(app.analysis.messages) > 10
        assert app.timeline.cursor == 0
        assert not app.timeline.following  # a file opens at the top
        texts = line_texts(app)
        assert "open ws" in texts[0]
        assert "Request available updates" in "".join(texts)
        assert app.ota.display, "the OTA panel appears when a session exists"


async def test_moving_the_cursor_updates_detail_and_link_gutter() -> None:
    async with on_screen("reva_outlet_ws") as (app, pilot):
        request = await select_first(app, pilot, 21, "request")
        assert app.timeline.current_message is not None
        assert app.timeline.current_message.id == request
        # at 80x24 the detail waits for d; then it follows once key repeat pauses
        assert not app.detail.display
        await pilot.press("d")
        await wait_until(pilot, lambda: app.detail.row_index == app.timeline.current_row_index)
        # every link of the request is marked with its relation glyph
        links = app.analysis.links_of(request)
        assert links
        for link in links:
            assert link.src == request
            assert app.timeline.related[link.dst] != ""
        assert app.timeline.related[request] == "▶"
        await pilot.press("down")
        row = app.timeline.message_rows.row_of(request)
        assert row is not None and app.timeline.current_row_index == row + 1


@pytest.mark.parametrize(
    ("size", "shown"), [((80, 24), False), ((80, 40), True), ((160, 30), True)]
)
async def test_detail_starts_hidden_on_short_narrow_screens_and_d_toggles_it(
    size: tuple[int, int], shown: bool
) -> None:
    async with on_screen("reva_outlet_ws", size=size) as (app, pilot):
        assert app.detail.display is shown
        timeline_rows = app.timeline.scrollable_content_region.height
        if not shown:
            # the timeline keeps most of the screen: all but status, OTA panel, footer
            assert timeline_rows >= size[1] - 6
        await pilot.press("d")
        assert app.detail.display is not shown
        await pilot.pause()
        if not shown:
            assert app.timeline.scrollable_content_region.height < timeline_rows
            await wait_until(pilot, lambda: app.detail.row_index == app.timeline.current_row_index)
        # the user's choice sticks when the terminal is resized
        await pilot.resize_terminal(size[0], 60)
        await pilot.pause()
        assert app.detail.display is not shown


async def test_the_detail_follows_each_resize_until_the_user_chooses() -> None:
    async with on_screen("reva_outlet_ws") as (app, pilot):
        assert not app.detail.display
        # taller than DETAIL_MIN_HEIGHT: shown; back to 80x24: hidden again
        await pilot.resize_terminal(80, 40)
        await wait_until(pilot, lambda: app.detail.display)
        await pilot.resize_terminal(80, 24)
        await wait_until(pilot, lambda: not app.detail.display)


async def test_selection_stays_on_screen_when_the_detail_opens() -> None:
    async with on_screen("revb_outlet_tcp") as (app, pilot):
        tl = app.timeline
        tl.move_to(tl.scrollable_content_region.height - 1)  # the bottom line
        await pilot.press("d")
        await pilot.pause()
        top = round(tl.scroll_offset.y)
        assert top <= tl.cursor < top + tl.scrollable_content_region.height


async def test_jump_between_request_and_reply() -> None:
    async with on_screen("reva_outlet_ws") as (app, pilot):
        request = first(app, 20, "request")
        reply = next(lk.dst for lk in app.analysis.links_of(request) if lk.relation == "response")
        await select_message(app, pilot, request)
        await pilot.press("r")
        assert app.timeline.current_message.id == reply  # type: ignore[union-attr]
        await pilot.press("r")
        assert app.timeline.current_message.id == request  # type: ignore[union-attr]


async def test_jump_to_ota_request_and_walk_the_session() -> None:
    async with on_screen("revb_outlet_tcp") as (app, pilot):
        session = app.analysis.sessions[0]
        assert session.request is not None
        members = sorted(set(session.messages) | {session.request})
        await select_first(app, pilot, 22)
        await pilot.press("o")
        assert app.timeline.current_message.id == session.request  # type: ignore[union-attr]
        await pilot.press("right_square_bracket")
        after = members[members.index(session.request) + 1]
        assert app.timeline.current_message.id == after  # type: ignore[union-attr]
        await pilot.press("left_square_bracket")
        assert app.timeline.current_message.id == session.request  # type: ignore[union-attr]


async def test_filter_shows_only_matching_rows_and_escape_clears() -> None:
    async with on_screen("reva_outlet_ws") as (app, pilot):
        await filter_by(pilot, "cb:22")
        refs = await shown_refs(app, pilot)
        assert len(refs) == sum(1 for m in app.analysis.messages if m.callback == 22)
        for ref in refs:
            assert app.analysis.messages[ref].callback == 22
        assert "filter: cb:22" in status(app)
        await escape_shows_every_row(app, pilot)


async def test_bad_filter_is_explained_and_not_applied() -> None:
    async with on_screen("reva_outlet_ws") as (app, pilot):
        await pilot.press("f", *"cb:21 and (", "enter")
        error = app.query_one("#query-error")
        assert error.display
        assert "a term is missing" in str(error.render())
        assert app.timeline.view.is_identity
        await pilot.press("escape")  # leaves the input, the filter stays unchanged
        assert not error.display
        assert app.timeline.has_focus


async def test_incremental_search_next_and_previous() -> None:
    async with on_screen("reva_outlet_ws") as (app, pilot):
        matches = [m.id for m in app.analysis.messages if m.callback == 22]
        assert len(matches) >= 3
        await pilot.press("slash")
        await pilot.press(*"cb:22")  # moves while typing
        assert app.timeline.current_message.id == matches[0]  # type: ignore[union-attr]
        await pilot.press("enter")
        await pilot.press("n")
        assert app.timeline.current_message.id == matches[1]  # type: ignore[union-attr]
        await pilot.press("n")
        assert app.timeline.current_message.id == matches[2]  # type: ignore[union-attr]
        await pilot.press("N")
        assert app.timeline.current_message.id == matches[1]  # type: ignore[union-attr]


async def test_plain_text_search_falls_back_from_a_bad_expression() -> None:
    async with on_screen("reva_outlet_ws") as (app, pilot):
        await pilot.press("slash", *"WWW partition (", "enter")
        # "(" alone is not an expression: searched as text, and nothing has it
        assert app.navigation.search is not None
        await pilot.press("slash")
        await pilot.press("ctrl+u")
        await pilot.press(*"WWW partition", "enter")
        msg = app.timeline.current_message
        assert msg is not None and "WWW partition" in app.timeline.text_of(
            app.analysis.rows[app.timeline.current_row_index], msg
        )


async def test_marks_and_jumping_between_them() -> None:
    async with on_screen("reva_outlet_ws") as (app, pilot):
        await pilot.press("down", "m")
        await pilot.press("down", "down", "down", "m")
        assert app.timeline.marks == {1, 4}
        assert app.timeline.render_line(1).text.startswith("★")
        await pilot.press("end", "home")
        await pilot.press("right_curly_bracket")
        assert app.timeline.current_row_index == 1
        await pilot.press("right_curly_bracket")
        assert app.timeline.current_row_index == 4
        await pilot.press("left_curly_bracket")
        assert app.timeline.current_row_index == 1
        await pilot.press("m")
        assert app.timeline.marks == {4}


async def test_time_mode_cycles_relative_delta_absolute() -> None:
    async with on_screen("reva_outlet_ws") as (app, pilot):
        assert app.timeline.render_line(0).text[3:].strip().startswith("0.000")
        await pilot.press("t")
        assert app.timeline.time_mode == "delta"
        assert "Δ" in app.timeline.render_line(2).text
        await pilot.press("t")
        assert app.timeline.time_mode == "absolute"
        assert ":" in app.timeline.render_line(0).text.split()[0]
        await pilot.press("t")
        assert app.timeline.time_mode == "relative"


async def test_live_follow_pauses_on_scroll_up_and_counts_new_rows() -> None:
    source = LiveSource("test")
    app = source_app(source)
    events = scenario_events("reva_outlet_ws")
    half = len(events) // 2
    async with app.run_test(size=SIZE) as pilot:
        for ev in events[:half]:
            source.push(ev)
        await wait_until(pilot, lambda: len(app.analysis.rows) > 0 and not app.feeder.backlog)
        await wait_until(pilot, lambda: len(app.timeline.view) == len(app.analysis.rows))
        tl = app.timeline
        assert tl.following
        assert tl.cursor == len(tl.view) - 1
        await pilot.press("up")
        assert not tl.following
        paused_at = tl.cursor
        before = len(app.analysis.rows)
        for ev in events[half:]:
            source.push(ev)
        await wait_until(pilot, lambda: not app.feeder.backlog and tl.new_rows > 0)
        assert tl.cursor == paused_at
        assert tl.new_rows == len(app.analysis.rows) - before
        assert f"{tl.new_rows} new" in status(app)
        await pilot.press("F")
        assert tl.following and tl.new_rows == 0
        assert tl.cursor == len(tl.view) - 1
        assert "following" in status(app)
        await pilot.press("up", "end")
        assert tl.following


async def test_choosing_an_ota_session_filters_the_timeline() -> None:
    async with on_screen("concurrent_outlet_and_deco", size=(160, 50)) as (app, pilot):
        assert len(app.analysis.sessions) == 2
        await pilot.press("s")
        assert app.ota.has_focus
        await pilot.press("down", "enter")
        shown = set(await shown_refs(app, pilot))
        session = app.analysis.sessions[1]
        members = set(session.messages) | {session.request}
        assert shown == members
        assert app.timeline.has_focus
        assert "OTA #2 only" in status(app)
        await escape_shows_every_row(app, pilot)


async def test_copy_puts_the_message_json_on_the_clipboard() -> None:
    async with on_screen("reva_outlet_ws") as (app, pilot):
        request = await select_first(app, pilot, 21, "request")
        await pilot.press("c")
        copied = json.loads(app.clipboard)
        assert copied["id"] == request
        assert copied["callback"] == 21 and copied["kind"] == "request"
        assert copied["packetID"] == app.analysis.messages[request].packet_id


async def test_export_writes_the_visible_rows(tmp_path: Path) -> None:
    async with on_screen("reva_outlet_ws", export_dir=tmp_path) as (app, pilot):
        await filter_by(pilot, "cb:21-23")
        await pilot.press("e")
        path = tmp_path / "reva_outlet_ws-export-1.json"
        doc = json.loads(path.read_text())
        expected = [m.id for m in app.analysis.messages if m.callback in (21, 22, 23)]
        assert [m["id"] for m in doc["messages"]] == expected
        assert doc["filter"] == "cb:21-23"
        assert all(lk["from"] in expected and lk["to"] in expected for lk in doc["links"])
        assert doc["links"], "links between shown messages are kept"
        # the trace export reopens as a capture of the same messages
        await app.run_action("export_trace")
        trace = tmp_path / "reva_outlet_ws-export-1.jsonl"
        again = load_events(trace)
        events = list(again.events)
        assert not again.problems
        from proxy.core.analysis import analyze

        replayed = analyze(events)
        assert [m.callback for m in replayed.messages] == [
            app.analysis.messages[i].callback for i in expected
        ]


async def test_copy_and_exports_hide_credentials_until_redaction_is_turned_off(
    tmp_path: Path,
) -> None:
    async with on_screen("two_apps", export_dir=tmp_path) as (app, pilot):
        config = first(app, 1, "response")
        assert b"hunter2" in app.analysis.messages[config].raw
        assert "redact: on" in status(app)
        await select_message(app, pilot, config)
        await pilot.press("c")
        copied = json.loads(app.clipboard)
        assert copied["id"] == config and "hunter2" not in app.clipboard
        assert copied["args"]["sys_prefs"]["mqtt"]["pass"] == "<redacted>"
        assert copied["args"]["sys_prefs"]["mqtt"]["user"] == "<redacted>"
        await pilot.press("e")
        await app.run_action("export_trace")
        exported = tmp_path / "two_apps-export-1.json"
        trace = tmp_path / "two_apps-export-1.jsonl"
        for path in (exported, trace):
            assert "hunter2" not in path.read_text()
        assert json.loads(exported.read_text())["redacted"] is True
        # the redacted trace still opens, with the config reply where it was
        replayed = list(load_events(trace).events)
        from proxy.core.analysis import analyze

        again = analyze(replayed)
        assert [m.callback for m in again.messages] == [m.callback for m in app.analysis.messages]
        # R turns it off, and the status bar says so; the copy is then as captured
        await pilot.press("R")
        assert "redact: OFF" in status(app)
        await pilot.press("c")
        assert json.loads(app.clipboard)["args"]["sys_prefs"]["mqtt"]["pass"] == "hunter2"
        await pilot.press("e")
        assert "hunter2" in (tmp_path / "two_apps-export-2.json").read_text()
        await pilot.press("R")
        assert "redact: on" in status(app)


async def test_help_screen_opens_and_closes() -> None:
    async with on_screen("reva_outlet_ws") as (app, pilot):
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        keys = {k for k, _, _ in app.screen.keys}
        assert {"/", "f", "r", "o", "m", "c", "e", "?"} <= keys
        assert "space" not in keys, "play keys only appear when playing"
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)


async def test_every_action_is_a_palette_command() -> None:
    async with on_screen("reva_outlet_ws") as (app, _):
        titles = {c.title for c in app.get_system_commands(app.screen)}
        by_action = {c.action: c for c in commands.COMMANDS}
        for binding in InvisApp.BINDINGS:
            assert isinstance(binding, Binding)
            command = by_action[binding.action]  # every key is a named command
            if not command.playback:
                assert command.title in titles, binding.action
        # and every action the app defines is in the table (so it has a title and help)
        actions = {name[len("action_") :] for name in vars(InvisApp) if name.startswith("action_")}
        assert actions <= set(by_action), actions - set(by_action)


def _spaced_events() -> list[Open | Data | Close]:
    events: list[Open | Data | Close] = [Open(0.0, "c1", "tcp", "127.0.0.1:5000", "10.0.0.5:3333")]
    for i in range(6):
        body = json.dumps({"packetID": 100000 + i, "payload": {"callbackName": 9}}) + "\n"
        events.append(Data(1000.0 * (i + 1), "c1", "app", body.encode()))
    return events


async def test_play_controls_pause_step_and_speed() -> None:
    # Gaps of 1000 s: nothing is delivered by waiting; only the controls move playback.
    source = PlaySource(_spaced_events(), speed=1.0, label="spaced")
    app = source_app(source)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: source.position == 1 and len(app.analysis.rows) == 1)
        assert app.timeline.following
        await pilot.press("space")
        assert source.paused
        await pilot.press("full_stop")
        await wait_until(pilot, lambda: source.position == 2)
        await pilot.press("full_stop")
        await wait_until(pilot, lambda: source.position == 3)
        await wait_until(pilot, lambda: len(app.analysis.messages) == 2)
        assert source.paused
        await pilot.press("plus", "plus")
        assert source.speed == 4.0
        await pilot.press("minus")
        assert source.speed == 2.0
        assert "paused ×2" in status(app)
        await pilot.press("space")
        assert not source.paused
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        assert "space" in {k for k, _, _ in app.screen.keys}


async def test_play_at_high_speed_delivers_everything_in_order() -> None:
    events = scenario_events("revb_outlet_tcp")
    source = PlaySource(events, speed=64.0)
    app = source_app(source)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, app.feeder.loaded.is_set, timeout=20)
        from proxy.core.analysis import analyze

        expected = analyze(events)
        assert [m.raw for m in app.analysis.messages] == [m.raw for m in expected.messages]
        assert app.analysis.sessions[0].outcome == expected.sessions[0].outcome


async def test_follow_tails_a_capture_that_is_still_being_written(tmp_path: Path) -> None:
    from proxy.store.capture import CaptureWriter
    from tui.sources import FollowSource

    events = scenario_events("revb_outlet_tcp")
    path = tmp_path / "live.invcap"
    with CaptureWriter(path, {"title": "growing"}) as writer:
        for ev in events[:5]:
            writer.write(ev)
        writer.flush()
        source = FollowSource(path, interval=0.02)
        app = source_app(source)
        async with app.run_test(size=SIZE) as pilot:
            from proxy.core.analysis import Analysis

            head = Analysis()
            head.feed_all(events[:5])
            whole = Analysis()
            whole.feed_all(events)
            await wait_until(pilot, lambda: len(app.analysis.rows) == len(head.rows))
            assert app.timeline.following
            for ev in events[5:]:
                writer.write(ev)
            writer.flush()
            await wait_until(pilot, lambda: len(app.analysis.rows) == len(whole.rows))
            assert app.timeline.cursor == len(app.timeline.view) - 1
            assert not app.feeder.finished, "a followed capture is never finished"


async def test_rows_show_the_analysis_verdict_at_80_columns() -> None:
    async with on_screen("reva_outlet_ws") as (app, pilot):
        spurious = next(m.id for m in app.analysis.messages if m.has("spurious-ota-result"))
        await select_message(app, pilot, spurious)
        tl = app.timeline
        line = tl.render_line(tl.cursor - round(tl.scroll_offset.y))
        assert line.cell_length == tl.scrollable_content_region.width
        # the verdict is on the row, whole, in the annotation's colour
        assert line.text.rstrip().endswith("· not a failure")
        tag = next(seg for seg in line if "not a failure" in seg.text)
        info = tl.get_component_rich_style("timeline--info", partial=True)
        assert tag.style is not None and tag.style.color == info.color
        assert "OTA result" in line.text


async def test_refused_reconnects_read_short_and_keep_the_whole_error() -> None:
    capture = Path(__file__).resolve().parents[2] / "captures" / "sample-revb-outlet-ota.invcap"
    app = source_app(FileSource(capture))
    async with app.run_test(size=(80, 40)) as pilot:
        await loaded(pilot)
        refused = [c for c in app.analysis.connections.values() if c.error]
        assert refused
        texts = line_texts(app)
        closes = [t for t in texts if "└ closed by proxy" in t and "outlet down" in t]
        assert closes, texts
        for text in closes:
            assert text.rstrip().endswith("closed by proxy · outlet down: connection refused")
        # the detail has the error verbatim, and a search finds it
        await pilot.press("slash", *"Errno 111", "enter")
        row = app.analysis.rows[app.timeline.current_row_index]
        assert row.kind == "close" and app.analysis.connections[row.conn].error
        await wait_until(pilot, lambda: app.detail.row_index == app.timeline.current_row_index)
        body = str(app.detail.body.render())
        assert "[Errno 111] Connect call failed" in body


def chatter(pairs: int) -> list[Open | Data | Close]:
    """One connection with ``pairs`` device-info requests and replies."""
    events: list[Open | Data | Close] = [Open(0.0, "c1", "tcp", "127.0.0.1:5000", "o:3333")]
    for i in range(pairs):
        pid = 100000 + i % 900000
        t = 1.0 + i * 0.01
        request = {"packetID": pid, "payload": {"callbackName": 12}}
        reply = {"packetID": pid, "payload": {"callbackName": 12, "callbackArgs": [1]}}
        events.append(Data(t, "c1", "app", json.dumps(request).encode() + b"\n"))
        events.append(Data(t + 0.001, "c1", "outlet", json.dumps(reply).encode() + b"\n"))
    events.append(Close(2.0 + pairs * 0.01, "c1", "outlet"))
    return events


class GatedSource(Source):
    """A file-like source whose later events arrive only when the test releases them.

    The load therefore cannot finish before the test has pressed its key, however fast
    or slow the box is.
    """

    label = "gated"

    def __init__(self, first: list[Open | Data | Close], rest: list[Open | Data | Close]) -> None:
        super().__init__()
        self.first = first
        self.rest = rest

    def start(self, sink: Sink) -> None:
        self.sink = sink
        sink.add_events(self.first)

    def release(self, count: int) -> bool:
        """Deliver the next ``count`` events; True while more remain."""
        assert self.sink is not None
        batch, self.rest = self.rest[:count], self.rest[count:]
        self.sink.add_events(batch)
        if not self.rest:
            self.sink.source_done([])
        return bool(self.rest)


async def test_a_big_load_feeds_long_slices_until_a_key_arrives() -> None:
    from tui import feeder as feeder_module

    events = chatter(40_000)
    source = GatedSource(events[:40_001], events[40_001:])
    app = source_app(source)
    async with app.run_test(size=(80, 24)) as pilot:
        # the first half loads with nobody typing; then each key releases more data,
        # until a slice has run while the app counted the user as typing (on a loaded
        # box a slice may start only after the grace period: then release more)
        await wait_until(pilot, lambda: len(app.analysis.messages) == 40_000, timeout=60)
        more = True
        while more:
            await pilot.press("down")
            more = source.release(2_000)
            await wait_until(pilot, lambda: not app.feeder.backlog, timeout=60)
            if any(s.typing for s in app.feeder.slices):
                break
        while more:
            more = source.release(20_000)
        await loaded(pilot)
    assert len(app.analysis.messages) == 80_000
    slices = list(app.feeder.slices)
    assert sum(s.events for s in slices) == len(events)
    typing = [s.budget for s in slices if s.typing]
    idle = [s.budget for s in slices if not s.typing]
    assert typing, "no slice ran while the user was typing"
    assert feeder_module.FEED_SLICE in idle  # nobody typing: long slices
    assert set(typing) == {feeder_module.FEED_SLICE_TYPING}  # short ones after a key


async def test_trace_export_keeps_injected_messages_and_close_errors(tmp_path: Path) -> None:
    events: list[Open | Data | Close] = [
        Open(1.0, "c1", "tcp", "127.0.0.1:5000", "10.0.0.5:3333"),
        Data(1.5, "c1", "app", b'{"packetID":100001,"payload":{"callbackName":12}}'),
        Data(2.0, "c1", "outlet", b'{"packetID":100002,"payload":{"callbackName":9}}', True, True),
        Close(3.0, "c1", "proxy", "outlet down: connection refused"),
    ]
    app = source_app(IterSource(events, label="mixed"), export_dir=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        await app.run_action("export_trace")
    # every row on show, one chunk per message: the trace holds exactly the events
    assert list(load_events(tmp_path / "mixed-export-1.jsonl").events) == events
