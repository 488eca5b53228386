"""Rules, holds and injections on a real relay, with real sockets on both sides.

A scripted outlet says what each test needs; the app is a plain socket. Each test checks
three things: what the app (or outlet) really received, what the relay recorded, and
that nothing else moved.
"""

from __future__ import annotations

import asyncio
import json
import random
from typing import Any

import pytest
import websockets
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from proxy.core.analysis import analyze
from proxy.core.events import Close, Data
from proxy.core.filter import Filter
from proxy.core.rules import RuleSet, parse_rule
from proxy.mitm.intervene import Held, Interventions
from proxy.mitm.relay import Relay
from tests.integration.relay_support import (
    WAIT,
    EventLog,
    RelayFactory,
    TcpOutlet,
    random_json_messages,
    relay_to_outlet,
    write_in_random_chunks,
)

SN = "11A18240076"


def wire(value: dict[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode() + b"\n"


def push(pid: int, cb: int, args: Any) -> bytes:
    return wire({"sn": SN, "packetID": pid, "payload": {"callbackName": cb, "callbackArgs": args}})


def request(pid: int, cb: int, args: Any = None) -> bytes:
    payload: dict[str, Any] = {"callbackName": cb}
    if args is not None:
        payload["callbackArgs"] = args
    return wire({"packetID": pid, "payload": payload})


def rules(*texts: str) -> RuleSet:
    return RuleSet(parse_rule(text, i) for i, text in enumerate(texts, 1))


class ScriptedOutlet:
    """An outlet that records what it gets and sends what the test queues, per connection.

    ``outbox`` is the latest connection's queue (the first one's before any); None in a
    queue closes that connection.
    """

    def __init__(self) -> None:
        self.received = b""
        self.got = asyncio.Event()
        self.queues: list[asyncio.Queue[bytes | None]] = [asyncio.Queue()]
        self.accepted = 0
        self.connected = asyncio.Event()

    @property
    def outbox(self) -> asyncio.Queue[bytes | None]:
        return self.queues[-1]

    async def __call__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.accepted:
            self.queues.append(asyncio.Queue())
        queue = self.queues[self.accepted]
        self.accepted += 1
        self.connected.set()

        async def write() -> None:
            while (data := await queue.get()) is not None:
                writer.write(data)
                await writer.drain()
            writer.close()

        writing = asyncio.ensure_future(write())
        try:
            while data := await reader.read(65536):
                self.received += data
                self.got.set()
        finally:
            writing.cancel()

    async def wait_connections(self, count: int) -> None:
        async def loop() -> None:
            while self.accepted < count:
                self.connected.clear()
                await self.connected.wait()

        await asyncio.wait_for(loop(), WAIT)

    async def wait_received(self, needle: bytes) -> None:
        async def loop() -> None:
            while needle not in self.received:
                self.got.clear()
                await self.got.wait()

        await asyncio.wait_for(loop(), WAIT)


async def read_until(reader: asyncio.StreamReader, needle: bytes, sofar: bytes = b"") -> bytes:
    data = sofar
    while needle not in data:
        chunk = await asyncio.wait_for(reader.read(65536), WAIT)
        if not chunk:
            raise AssertionError(f"closed before {needle!r}; got {data!r}")
        data += chunk
    return data


async def through(
    make_relay: RelayFactory, *texts: str, **options: Any
) -> tuple[ScriptedOutlet, EventLog, Any, asyncio.StreamReader, asyncio.StreamWriter]:
    outlet = ScriptedOutlet()
    _, log, relay = await relay_to_outlet(make_relay, outlet, rules=rules(*texts), **options)
    assert relay.tcp_address is not None
    reader, writer = await asyncio.open_connection(*relay.tcp_address)
    await outlet.wait_connections(1)
    return outlet, log, relay, reader, writer


def marks(log: EventLog) -> list[tuple[str, str, str | None]]:
    return [
        (e.side, e.intervention.action, e.intervention.rule)
        for e in log.events
        if isinstance(e, Data) and e.intervention is not None
    ]


async def test_reply_puback_0_refuses_the_update_without_reaching_the_outlet(
    make_relay: RelayFactory,
) -> None:
    rule = "cb:21 dir:app -> reply puback=0"
    outlet, log, _, reader, writer = await through(make_relay, rule)
    # the outlet speaks first, so the proxy knows its serial
    await outlet.outbox.put(push(1, 12, {"IM": {"fw_rev": "0.0.1"}}))
    await read_until(reader, b'"callbackName":12')
    writer.write(request(414883, 21, [1, 1]) + request(414884, 20))
    answer = await read_until(reader, b"\n")
    assert json.loads(answer) == {"sn": SN, "packetID": 414883, "PUBACK": 0}
    await outlet.wait_received(b"414884")  # the next request went through...
    assert b"414883" not in outlet.received  # ...the refused one never did
    assert marks(log) == [("app", "reply", rule), ("outlet", "reply", rule)]
    made = [e for e in log.events if isinstance(e, Data) and e.injected]
    assert [e.data for e in made] == [answer]
    writer.close()
    await log.wait_closed("c1")
    # and the analysis of that recording says who refused
    (session,) = analyze(log.events).sessions
    assert session.outcome == "refused" and session.app_outcome == "refused"
    assert "proxy" in session.reason
    assert session.app_reason is not None and rule in session.app_reason


async def test_drop_of_the_revb_sync_keeps_what_came_with_it(make_relay: RelayFactory) -> None:
    rule = "cb:21 dir:outlet -> drop"
    outlet, log, _, reader, writer = await through(make_relay, rule)
    await outlet.outbox.put(push(414883, 21, [1, 1]) + push(7, 22, [1, 10]))
    got = await read_until(reader, b'"callbackName":22')
    assert got == push(7, 22, [1, 10])
    assert marks(log) == [("outlet", "drop", rule)]
    dropped = next(e for e in log.events if isinstance(e, Data) and e.intervention)
    assert dropped.data == push(414883, 21, [1, 1])  # what was received, not forwarded
    writer.close()


async def test_progress_stops_at_30_percent(make_relay: RelayFactory) -> None:
    rule = "cb:22 arg.1:40-100 -> drop"
    outlet, log, relay, reader, writer = await through(make_relay, rule)
    for pct in (10, 20, 30, 40, 50, 100):
        await outlet.outbox.put(push(pct, 22, [1, pct]))
    await outlet.outbox.put(push(999, 23, [1, 1]))
    got = await read_until(reader, b'"callbackName":23')
    seen = [json.loads(line)["payload"]["callbackArgs"] for line in got.splitlines()]
    assert seen == [[1, 10], [1, 20], [1, 30], [1, 1]]
    assert [m[1] for m in marks(log)] == ["drop"] * 3
    (only,) = relay.interventions.rules.rules
    assert (only.matched, only.applied) == (3, 3)
    writer.close()


async def test_success_becomes_failure_for_the_app(make_relay: RelayFactory) -> None:
    rule = "cb:23 arg.0:1 arg.1:1 -> set payload.callbackArgs.1=0"
    outlet, log, _, reader, writer = await through(make_relay, rule)
    await outlet.outbox.put(push(5, 23, [1, 1]))
    got = await read_until(reader, b"\n")
    assert got == push(5, 23, [1, 0])
    (changed,) = [e for e in log.events if isinstance(e, Data) and e.intervention]
    assert changed.data == push(5, 23, [1, 0]) and changed.original == push(5, 23, [1, 1])
    assert changed.intervention is not None and changed.intervention.action == "set"
    writer.close()


async def test_a_delay_holds_that_direction_only(make_relay: RelayFactory) -> None:
    outlet, log, _, reader, writer = await through(make_relay, "cb:22 -> delay 0.5")
    loop = asyncio.get_running_loop()
    sent = loop.time()
    await outlet.outbox.put(push(1, 22, [1, 10]) + push(2, 9, [1, 1]))
    # meanwhile the other direction flows
    writer.write(request(123456, 20))
    await outlet.wait_received(b"123456")
    got = await read_until(reader, b'"callbackName":9')
    waited = loop.time() - sent
    assert waited >= 0.5
    assert got == push(1, 22, [1, 10]) + push(2, 9, [1, 1])  # order kept behind it
    delayed, behind = [e for e in log.events if isinstance(e, Data) and e.intervention]
    asked = next(e for e in log.events if isinstance(e, Data) and b"123456" in e.data)
    # the app's request crossed while the push waited: recorded before its release
    assert log.events.index(asked) < log.events.index(delayed)
    assert delayed.intervention is not None
    assert delayed.intervention.action == "delay"
    assert delayed.intervention.rule == "cb:22 -> delay 0.5"
    assert delayed.intervention.held is not None and delayed.intervention.held >= 0.5
    # the cb9 behind it waited as long, and is marked so, with no rule of its own
    assert behind.data == push(2, 9, [1, 1])
    assert behind.intervention is not None and behind.intervention.action == "delay"
    assert behind.intervention.rule is None
    assert behind.intervention.why == "waited behind a message that was delayed or held"
    writer.close()


async def test_close_once_closes_that_connection_and_then_lets_progress_pass(
    make_relay: RelayFactory,
) -> None:
    rule = "cb:22 arg.1:50-100 -> close once"
    outlet, log, relay, reader, writer = await through(make_relay, rule)
    await outlet.outbox.put(push(1, 22, [1, 40]) + push(2, 22, [1, 60]))
    got = await read_until(reader, b"\n")
    assert got == push(1, 22, [1, 40])
    assert await asyncio.wait_for(reader.read(), WAIT) == b""  # closed, 60 % never came
    close = await log.wait_closed("c1")
    assert close.by == "proxy"
    assert marks(log) == [("outlet", "close", rule)]
    # once: a new connection gets every progress message
    reader2, writer2 = await asyncio.open_connection(*relay.tcp_address)
    await outlet.wait_connections(2)
    await outlet.outbox.put(push(3, 22, [1, 70]))
    assert await read_until(reader2, b"\n") == push(3, 22, [1, 70])
    writer2.close()
    writer.close()


async def test_held_messages_wait_for_the_user_who_forwards_edits_or_drops_them(
    make_relay: RelayFactory,
) -> None:
    outlet, log, relay, _reader, writer = await through(make_relay)
    interventions: Interventions = relay.interventions
    changed = asyncio.Event()
    interventions.listeners.append(changed.set)
    interventions.set_intercept(Filter.parse("dir:app cb:20"))

    async def held(count: int) -> list[Held]:
        while len(interventions.held()) < count:
            changed.clear()
            await asyncio.wait_for(changed.wait(), WAIT)
        return interventions.held()

    writer.write(request(100001, 20) + request(100002, 20) + request(100003, 20))
    first, second, _third = await held(3)
    assert outlet.received == b""
    with pytest.raises(ValueError, match="JSON"):
        interventions.forward(first.id, '{"packetID": 100001,')  # invalid: never sent
    interventions.forward(first.id, '{"packetID": 100001, "payload": {"callbackName": 20, '
                                    '"callbackArgs": ["edited"]}}')  # fmt: skip
    await outlet.wait_received(b"edited")
    interventions.drop(second.id)
    assert interventions.forward_all() == 1
    await outlet.wait_received(b"100003")
    assert b"100002" not in outlet.received
    assert outlet.received == (
        b'{"packetID":100001,"payload":{"callbackName":20,"callbackArgs":["edited"]}}\n'
        + request(100003, 20)
    )
    assert [m[1] for m in marks(log)] == ["edit", "drop", "hold"]
    edit = next(e for e in log.events if isinstance(e, Data) and e.intervention)
    assert edit.original == request(100001, 20)
    writer.close()


async def test_the_reply_to_an_injected_request_is_swallowed(make_relay: RelayFactory) -> None:
    outlet, log, relay, reader, writer = await through(make_relay)
    writer.write(request(1, 20))
    await outlet.wait_received(b'"packetID":1,')
    await outlet.outbox.put(wire({"sn": SN, "packetID": 1, "PUBACK": 1}))
    await read_until(reader, b"PUBACK")
    relay.inject("c1", "outlet", request(654321, 20))
    await outlet.wait_received(b"654321")
    await outlet.outbox.put(wire({"sn": SN, "packetID": 654321, "PUBACK": 1}))
    await outlet.outbox.put(push(9, 9, [1, 1]))
    got = await read_until(reader, b'"callbackName":9')
    assert b"654321" not in got  # the app never asked
    assert marks(log)[-1][:2] == ("outlet", "drop")
    swallowed = [e for e in log.events if isinstance(e, Data) and e.intervention]
    assert swallowed[0].intervention is not None
    assert swallowed[0].intervention.action == "inject"
    assert swallowed[-1].intervention is not None and swallowed[-1].intervention.by == "user"
    writer.close()


async def test_websocket_rules_drop_and_change_whole_messages(make_relay: RelayFactory) -> None:
    async def outlet(ws: Any) -> None:
        async for _ in ws:
            await ws.send(push(1, 22, [1, 50]).decode())
            await ws.send(push(2, 23, [1, 1]).decode())

    log = EventLog()
    async with websockets.serve(outlet, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        relay = await make_relay(
            outlet_ws_port=port, sinks=[log],
            rules=rules("cb:22 arg.1:40-100 -> drop",
                        "cb:23 arg.0:1 arg.1:1 -> set payload.callbackArgs.1=0"),
        )  # fmt: skip
        assert relay.ws_address is not None
        host, ws_port = relay.ws_address
        async with websockets.connect(f"ws://{host}:{ws_port}/ws") as ws:
            await ws.send(request(1, 20).decode())
            got = await asyncio.wait_for(ws.recv(), WAIT)
            assert json.loads(got)["payload"] == {"callbackName": 23, "callbackArgs": [1, 0]}
    assert [m[1] for m in marks(log)] == ["drop", "set"]


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_rules_that_match_nothing_forward_every_byte_in_order(
    make_relay: RelayFactory, seed: int
) -> None:
    """Frame by frame (the direction is gated) yet byte-exact: the frames forwarded are
    the frames received, with whatever lies between them."""
    rng = random.Random(seed)
    messages = random_json_messages(rng, 60)
    stream = b"".join(messages) + b"  trailing garbage"
    outlet = ScriptedOutlet()
    _, log, relay = await relay_to_outlet(
        make_relay, outlet, rules=rules("cb:999 -> drop", "pid:1 -> close")
    )
    _reader, writer = await asyncio.open_connection(*relay.tcp_address)
    await outlet.wait_connections(1)
    await write_in_random_chunks(writer, stream, rng)
    writer.write_eof()
    await outlet.wait_received(b"trailing garbage")
    assert outlet.received == stream
    assert log.stream("c1", "app") == stream
    assert marks(log) == []
    await outlet.outbox.put(None)
    await log.wait_closed("c1")
    writer.close()
    closes = [e for e in log.events if isinstance(e, Close)]
    assert len(closes) == 1


async def test_the_analysis_of_a_success_shown_as_failure_has_two_truths(
    make_relay: RelayFactory,
) -> None:
    rule = "cb:23 arg.0:1 arg.1:1 -> set payload.callbackArgs.1=0"
    outlet, log, _, reader, writer = await through(make_relay, rule)
    writer.write(request(414883, 21, [1, 1]))
    await outlet.wait_received(b"414883")
    await outlet.outbox.put(wire({"sn": SN, "packetID": 414883, "PUBACK": 1}))
    for pct in (10, 100):
        await outlet.outbox.put(push(pct, 22, [1, pct]))
    await outlet.outbox.put(push(5, 23, [1, 1]))
    await read_until(reader, b'"callbackName":23')
    writer.close()
    await log.wait_closed("c1")
    (session,) = analyze(log.events).sessions
    assert (session.outcome, session.app_outcome) == ("succeeded", "failed")


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.sampled_from([request(1, 20), push(2, 22, [1, 5]), b"junk", b'{"a":', b"}", b"\n"]),
        max_size=12,
    ),
    st.randoms(use_true_random=False),
)
def test_property_a_gated_direction_forwards_what_it_received_when_no_rule_acts(
    confdir: str, pieces: list[bytes], rng: random.Random
) -> None:
    """Whatever bytes (valid frames, garbage, frames cut anywhere), rules that match
    nothing forward them all, in order, and record exactly them."""
    stream = b"".join(pieces) + b"{}"

    async def scenario() -> None:
        outlet = ScriptedOutlet()
        server = TcpOutlet(outlet)
        await server.start()
        log = EventLog()
        relay = Relay(
            "127.0.0.1", outlet_tcp_port=server.port, tcp_port=0, ws_port=None,
            confdir=confdir, sinks=[log], rules=rules("cb:999 -> drop"),
        )  # fmt: skip
        await relay.start()
        try:
            assert relay.tcp_address is not None
            _reader, writer = await asyncio.open_connection(*relay.tcp_address)
            await write_in_random_chunks(writer, stream, rng, max_chunk=9)
            writer.write_eof()
            await outlet.wait_received(stream)
            assert relay.interventions.engaged  # the direction went frame by frame
            assert outlet.received == stream
            assert log.stream("c1", "app") == stream
            writer.close()
        finally:
            await relay.stop()
            await server.stop()

    asyncio.run(scenario())


async def test_websocket_messages_still_delayed_go_out_before_the_outlets_close(
    make_relay: RelayFactory,
) -> None:
    async def outlet(ws: Any) -> None:
        async for _ in ws:
            await ws.send(push(1, 22, [1, 90]).decode())
            await ws.close()  # the reboot: the delayed progress is still owed to the app

    log = EventLog()
    async with websockets.serve(outlet, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        relay = await make_relay(outlet_ws_port=port, sinks=[log], rules=rules("cb:22 -> delay 30"))
        assert relay.ws_address is not None
        host, ws_port = relay.ws_address
        async with websockets.connect(f"ws://{host}:{ws_port}/ws") as ws:
            await ws.send(request(1, 20).decode())
            got = await asyncio.wait_for(ws.recv(), WAIT)  # long before the 30 s
            assert json.loads(got)["payload"]["callbackArgs"] == [1, 90]
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(ws.recv(), WAIT)
    (sent,) = [e for e in log.events if isinstance(e, Data) and e.intervention]
    assert sent.intervention is not None and sent.intervention.action == "delay"
    assert sent.intervention.why == "sent early: the sender closed its side"
