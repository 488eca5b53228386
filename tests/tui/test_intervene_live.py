"""The intervention keys end to end: the TUI over a real relay, the real simulator and a
real app connection (proxy.net.client.OutletLink over TCP on 127.0.0.1).

Each test checks what the app really received, what reached the outlet (its state),
and what the relay recorded, after the user pressed the keys.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from textual.pilot import Pilot
from textual.widgets import TextArea

from proxy.core.events import Data, Event
from proxy.core.framing import Frame
from proxy.core.rules import RuleSet, parse_rule
from proxy.mitm.relay import Relay
from proxy.net.client import OutletLink
from proxy.sim.config import SimConfig
from proxy.sim.outlet import OutletSimulator
from tests.tui.conftest import source_app, wait_until
from tui.app import InvisApp
from tui.sources import LiveSource
from tui.widgets.choice import ChoiceScreen
from tui.widgets.editor import EditorScreen
from tui.widgets.rules import RulesScreen

SIZE = (120, 36)
WAIT = 15.0


def request(pid: int, cb: int, args: Any = None) -> bytes:
    payload: dict[str, Any] = {"callbackName": cb}
    if args is not None:
        payload["callbackArgs"] = args
    return json.dumps({"packetID": pid, "payload": payload}).encode() + b"\n"


@dataclass
class Live:
    app: InvisApp
    pilot: Pilot[None]
    relay: Relay
    sim: OutletSimulator
    link: OutletLink
    frames: list[Any] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def frame_with(self, pid: int) -> None:
        """Wait (without the app) until the app's connection received this packetID."""
        while not self.got(pid):
            self.arrived.clear()
            await self.arrived.wait()

    def got(self, pid: int) -> list[Any]:
        """What the app received with this packetID."""
        return [f for f in self.frames if isinstance(f, dict) and f.get("packetID") == pid]

    async def reply(self, pid: int) -> dict[str, Any]:
        await wait_until(self.pilot, lambda: bool(self.got(pid)), WAIT)
        reply = self.got(pid)[0]
        assert isinstance(reply, dict)
        return reply

    def records(self, pid: int) -> list[Data]:
        """The relay's Data records that carry this packetID."""
        return [e for e in self.events if isinstance(e, Data) and str(pid).encode() in e.data]

    async def held(self, count: int) -> None:
        await wait_until(self.pilot, lambda: len(self.app.held_panel.held) == count, WAIT)


@asynccontextmanager
async def live(rules: RuleSet | None = None) -> AsyncIterator[Live]:
    logging.getLogger("mitmproxy").setLevel(logging.CRITICAL)
    sim = OutletSimulator(SimConfig(sensor_interval=0, tcp_merge=0, tcp_split=0, seed=7))
    await sim.start()
    source = LiveSource("live test")
    events: list[Event] = []

    def sink(event: Event) -> None:
        events.append(event)
        source.push(event)

    relay = Relay(
        "127.0.0.1",
        outlet_tcp_port=sim.tcp_port,
        outlet_ws_port=sim.ws_port,
        tcp_port=0,
        ws_port=None,
        sinks=[sink],
        rules=rules,
    )
    await relay.start()
    source.control = relay
    app = source_app(source)
    frames: list[Any] = []
    arrived = asyncio.Event()

    def on_frame(link: OutletLink, frame: Frame) -> None:
        frames.append(frame.value)
        arrived.set()

    try:
        async with app.run_test(size=SIZE) as pilot:
            assert relay.tcp_address is not None
            host, port = relay.tcp_address
            link = await OutletLink.open("tcp", host, port, on_frame=on_frame)
            try:
                yield Live(app, pilot, relay, sim, link, frames, events, arrived)
            finally:
                await link.close()
    finally:
        await relay.stop()
        await sim.stop()


async def intercept(pilot: Pilot[None], expression: str) -> None:
    await pilot.press("i", *expression, "enter")


async def hold_one(t: Live, expression: str, data: bytes) -> None:
    """Intercept ``expression``, then the app sends ``data``: the TUI holds one message."""
    await intercept(t.pilot, expression)
    await t.link.send(data)
    await t.held(1)


async def edit_held(t: Live, expression: str, data: bytes) -> TextArea:
    """Hold the app's ``data`` and open the editor on it with ``e``: the editor's text."""
    await hold_one(t, expression, data)
    await t.pilot.press("e")
    await wait_until(t.pilot, lambda: isinstance(t.app.screen, EditorScreen), WAIT)
    return t.app.screen.query_one(TextArea)


async def clear_intercept(t: Live) -> None:
    """i, then an empty filter: hold nothing new."""
    await t.pilot.press("i")
    t.app.query_bar.field.value = ""
    await t.pilot.press("enter")
    assert t.relay.interventions.intercept is None


async def test_held_request_is_forwarded_with_a_then_answered() -> None:
    async with live() as t:
        await hold_one(t, "cb:15 dir:app", request(150001, 15))
        assert "1 held" in str(t.app.status.render())
        assert not t.got(150001)  # the outlet has not seen it: no reply yet
        await t.pilot.press("a")
        reply = await t.reply(150001)
        assert reply["payload"]["callbackName"] == 15
        kinds = [
            (r.side, r.intervention.action if r.intervention else None) for r in t.records(150001)
        ]
        assert ("app", "hold") in kinds


async def test_edited_request_reaches_the_outlet_as_edited() -> None:
    async with live() as t:
        # (dir:app: the outlet's pure PUBACK answer is a cb14 too, as the timeline shows it)
        area = await edit_held(t, "cb:14 dir:app", request(140001, 14, [1, 100]))
        area.text = area.text.replace("100", "30")
        await t.pilot.pause()
        await t.pilot.press("ctrl+s")
        await t.reply(140001)
        await clear_intercept(t)
        await t.link.send(request(150002, 15))
        status = await t.reply(150002)
        assert status["payload"]["callbackArgs"] == [1, 30]  # the outlet took the edit
        edited = [
            r for r in t.records(140001) if r.intervention and r.intervention.action == "edit"
        ]
        assert len(edited) == 1 and edited[0].original == request(140001, 14, [1, 100])


async def test_invalid_edit_is_not_sent_and_the_message_stays_held() -> None:
    async with live() as t:
        area = await edit_held(t, "cb:15", request(150003, 15))
        area.text = '{"packetID": 150003,'
        await t.pilot.pause()
        await t.pilot.press("ctrl+s")
        await t.pilot.pause()
        assert isinstance(t.app.screen, EditorScreen)
        await t.pilot.press("escape")
        assert len(t.relay.interventions.held()) == 1
        await t.pilot.press("x")  # drop it
        await t.held(0)
        dropped = [r for r in t.records(150003) if r.intervention]
        assert [(r.intervention.action, r.intervention.by) for r in dropped if r.intervention] == [
            ("drop", "user")
        ]
        # the direction flows again: a later request is answered, the dropped one never
        await clear_intercept(t)
        await t.link.send(request(30001, 3))
        await t.reply(30001)
        assert not t.got(150003)


async def test_forward_all_releases_every_held_message_in_order() -> None:
    async with live() as t:
        await intercept(t.pilot, "dir:app")
        await t.link.send(request(150004, 15) + request(30002, 3))
        await t.held(2)
        await t.pilot.press("A")
        await t.reply(150004)
        await t.reply(30002)
        ids = [f.get("packetID") for f in t.frames if isinstance(f, dict)]
        assert ids.index(150004) < ids.index(30002)


async def test_quit_with_held_messages_asks_then_forwards_them() -> None:
    # cb:15 matches the outlet's answer too: once the TUI is gone nobody could release it,
    # so quitting must stop holding before it forwards
    async with live() as t:
        await hold_one(t, "cb:15", request(150005, 15))
        await t.pilot.press("q")
        await wait_until(t.pilot, lambda: isinstance(t.app.screen, ChoiceScreen), WAIT)
        await t.pilot.press("enter")  # forward them all, then quit
        await wait_until(t.pilot, lambda: not t.app.is_running, WAIT)
        await asyncio.wait_for(t.frame_with(150005), WAIT)  # the app has gone, the relay not


async def test_inject_to_the_outlet_links_and_swallows_its_reply() -> None:
    async with live() as t:
        await t.link.send(request(30003, 3))
        await t.reply(30003)
        app = t.app
        await wait_until(t.pilot, lambda: app.timeline.current_message is not None, WAIT)
        await app.run_action("inject_outlet")
        await wait_until(t.pilot, lambda: isinstance(app.screen, ChoiceScreen), WAIT)
        choice = app.screen
        assert isinstance(choice, ChoiceScreen)
        ids = [key for key, _ in choice.options]
        await t.pilot.press(*["down"] * ids.index("15"), "enter")
        await wait_until(t.pilot, lambda: isinstance(app.screen, EditorScreen), WAIT)
        pid = json.loads(app.screen.query_one(TextArea).text)["packetID"]
        await t.pilot.press("ctrl+s")
        # the outlet answers the injection; the relay records the answer, dropped
        await wait_until(
            t.pilot,
            lambda: any(r.side == "outlet" for r in t.records(pid)),
            WAIT,
        )
        sent = [r for r in t.records(pid) if r.side == "app"]
        assert len(sent) == 1 and sent[0].injected
        answer = [r for r in t.records(pid) if r.side == "outlet"]
        assert len(answer) == 1 and answer[0].intervention is not None
        mark = answer[0].intervention
        assert (mark.action, mark.by) == ("drop", "user")
        assert mark.why == "reply to an injected request; the app never asked"
        # the app never saw it: a later request's reply comes, that one does not
        await t.link.send(request(30004, 3))
        await t.reply(30004)
        assert not t.got(pid)
        # linked: r on the injected request jumps to its reply
        await wait_until(
            t.pilot, lambda: sum(m.packet_id == pid for m in app.analysis.messages) == 2, WAIT
        )
        req = next(m for m in app.analysis.messages if m.packet_id == pid and m.side == "app")
        row = app.timeline.message_rows.row_of(req.id)
        assert row is not None and app.timeline.select_row_index(row)
        await t.pilot.press("r")
        msg = app.timeline.current_message
        assert msg is not None and msg.packet_id == pid and msg.side == "outlet"


async def test_switching_a_rule_off_in_the_rules_screen_changes_what_the_relay_does() -> None:
    rules = RuleSet([parse_rule("cb:15 dir:outlet -> drop", 1)])
    async with live(rules) as t:
        await t.link.send(request(150006, 15) + request(30005, 3))
        await t.reply(30005)  # the outlet answers in order: cb15's answer was dropped
        assert not t.got(150006)
        await t.pilot.press("l")
        await wait_until(t.pilot, lambda: isinstance(t.app.screen, RulesScreen), WAIT)
        screen = t.app.screen
        assert isinstance(screen, RulesScreen)
        await wait_until(t.pilot, lambda: str(screen.table.get_row_at(0)[2]) == "1", WAIT)
        await t.pilot.press("space", "escape")
        assert not rules.rules[0].enabled
        await t.link.send(request(150007, 15))
        await t.reply(150007)  # switched off: forwarded
