"""The live relay on real sockets and a real mitmproxy: exact bytes, exact events."""

from __future__ import annotations

import asyncio
import logging
import random
import socket
from pathlib import Path
from typing import Any

import pytest
import websockets

from proxy.core.events import Close, Data, Open, is_utf8
from proxy.mitm.addon import InjectError
from proxy.mitm.relay import Relay, RelayError
from tests.integration.relay_support import (
    WAIT,
    EventLog,
    RelayFactory,
    TcpOutlet,
    echo,
    random_json_messages,
    relay_to_outlet,
    write_in_random_chunks,
)


async def test_tcp_relay_is_byte_exact_and_events_reproduce_both_streams(
    make_relay: RelayFactory,
) -> None:
    rng = random.Random(20240521)
    app_stream = b"".join(random_json_messages(rng, 2500))
    outlet_stream = b"".join(random_json_messages(rng, 2500))
    outlet_got = bytearray()
    outlet_done = asyncio.Event()

    async def outlet_side(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async def receive() -> None:
            while data := await reader.read(65536):
                outlet_got.extend(data)

        receiver = asyncio.create_task(receive())
        await write_in_random_chunks(writer, outlet_stream, random.Random(1))
        await receiver  # until the app's EOF arrives through the relay
        outlet_done.set()

    after = EventLog()
    outlet, log, relay = await relay_to_outlet(make_relay, outlet_side, deferred_sinks=[after])
    assert relay.tcp_address is not None

    reader, writer = await asyncio.open_connection(*relay.tcp_address)
    app_addr = writer.get_extra_info("sockname")
    sender = asyncio.create_task(write_in_random_chunks(writer, app_stream, random.Random(2)))
    app_got = await asyncio.wait_for(reader.readexactly(len(outlet_stream)), WAIT)
    await sender
    writer.close()
    await asyncio.wait_for(outlet_done.wait(), WAIT)
    close = await log.wait_closed("c1")

    assert app_got == outlet_stream
    assert bytes(outlet_got) == app_stream
    events = log.of("c1")
    assert events[0] == Open(
        events[0].t, "c1", "tcp", f"{app_addr[0]}:{app_addr[1]}", f"127.0.0.1:{outlet.port}"
    )
    assert events[-1] is close and close.by == "app" and close.error is None
    data = [e for e in events if isinstance(e, Data)]
    assert len(data) == len(events) - 2
    assert log.stream("c1", "app") == app_stream
    assert log.stream("c1", "outlet") == outlet_stream
    assert all(d.text == is_utf8(d.data) and not d.injected for d in data)
    ts = [e.t for e in log.events]
    assert ts == sorted(ts)
    await relay.stop()
    assert after.events == log.events  # the deferred sink saw the same, in the same order
    await outlet.stop()


async def test_tls_looking_first_bytes_are_relayed_raw(make_relay: RelayFactory) -> None:
    """0x16 0x03 starts a TLS record; the outlet speaks plain TCP, so no TLS sniffing."""
    outlet, log, relay = await relay_to_outlet(make_relay, echo)
    payload = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(range(256)) * 4
    reader, writer = await asyncio.open_connection(*relay.tcp_address)
    writer.write(payload)
    assert await asyncio.wait_for(reader.readexactly(len(payload)), WAIT) == payload
    writer.close()
    await log.wait_closed("c1")
    assert log.stream("c1", "app") == payload == log.stream("c1", "outlet")
    assert not any(isinstance(e, Data) and e.text for e in log.of("c1"))
    await outlet.stop()


def _random_ws_messages(rng: random.Random, count: int) -> list[str | bytes]:
    out: list[str | bytes] = []
    for text in random_json_messages(rng, count):
        if rng.random() < 0.3:
            out.append(rng.randbytes(rng.randint(0, 3000)))
        else:
            out.append(text.decode())
    out.append("")
    return out


async def test_websocket_relay_keeps_every_message_and_its_type(make_relay: RelayFactory) -> None:
    rng = random.Random(7)
    app_msgs = _random_ws_messages(rng, 600)
    outlet_msgs = _random_ws_messages(rng, 600)
    outlet_got: list[str | bytes] = []

    async def handler(ws: Any) -> None:
        async def send_all() -> None:
            for m in outlet_msgs:
                await ws.send(m)

        sender = asyncio.create_task(send_all())
        async for m in ws:
            outlet_got.append(m)
        await sender

    async with websockets.serve(handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        log = EventLog()
        relay = await make_relay(outlet_ws_port=port, sinks=[log])
        assert relay.ws_address is not None
        url = f"ws://127.0.0.1:{relay.ws_address[1]}/ws"
        async with websockets.connect(url, max_size=None) as ws:
            pong = await ws.ping(b"are you there")
            sender = asyncio.create_task(_send_all(ws, app_msgs))
            app_got = [await asyncio.wait_for(ws.recv(), WAIT) for _ in outlet_msgs]
            await asyncio.wait_for(pong, WAIT)
            await sender
        close = await log.wait_closed("c1")

    assert app_got == outlet_msgs
    assert outlet_got == app_msgs
    events = log.of("c1")
    assert isinstance(events[0], Open) and events[0].transport == "ws"
    assert events[-1] is close and close.by == "app" and close.error is None
    for side, sent in (("app", app_msgs), ("outlet", outlet_msgs)):
        data = [e for e in events if isinstance(e, Data) and e.side == side]
        # one event per message, nothing for the ping and pong
        assert [d.data.decode() if d.text else d.data for d in data] == sent
        assert [d.text for d in data] == [isinstance(m, str) for m in sent]


async def _send_all(ws: Any, messages: list[str | bytes]) -> None:
    for m in messages:
        await ws.send(m)


class _HookCounter:
    """A mitmproxy addon counting the flow hooks it is offered."""

    def __init__(self) -> None:
        self.calls: dict[str, int] = {}

    def _count(self, name: str) -> None:
        self.calls[name] = self.calls.get(name, 0) + 1

    def tcp_start(self, flow: Any) -> None:
        self._count("tcp_start")

    def tcp_message(self, flow: Any) -> None:
        self._count("tcp_message")

    def websocket_start(self, flow: Any) -> None:
        self._count("websocket_start")

    def websocket_message(self, flow: Any) -> None:
        self._count("websocket_message")


async def test_messages_skip_mitmproxy_hooks_but_are_all_recorded(
    make_relay: RelayFactory,
) -> None:
    """The relay hands messages to invisproxy in place: no per-message hook round trip.

    This also guards the WebSocket take-over, which relies on mitmproxy's layer layout.
    """
    from mitmproxy import ctx

    async def ws_echo(ws: Any) -> None:
        async for m in ws:
            await ws.send(m)

    outlet = TcpOutlet(echo)
    await outlet.start()
    async with websockets.serve(ws_echo, "127.0.0.1", 0) as server:
        ws_port = server.sockets[0].getsockname()[1]
        log = EventLog()
        relay = await make_relay(outlet_tcp_port=outlet.port, outlet_ws_port=ws_port, sinks=[log])
        counter = _HookCounter()
        ctx.master.addons.add(counter)  # type: ignore[no-untyped-call]
        assert relay.tcp_address is not None and relay.ws_address is not None
        reader, writer = await asyncio.open_connection(*relay.tcp_address)
        for i in range(3):
            writer.write(b'{"n":%d}' % i)
            assert await asyncio.wait_for(reader.readexactly(7), WAIT) == b'{"n":%d}' % i
        writer.close()
        url = f"ws://127.0.0.1:{relay.ws_address[1]}/ws"
        async with websockets.connect(url) as ws:
            for i in range(3):
                await ws.send(f"m{i}")
                assert await asyncio.wait_for(ws.recv(), WAIT) == f"m{i}"
        await log.wait_closed("c1")
        await log.wait_closed("c2")
    await outlet.stop()

    data = [(e.conn, e.side, e.data) for e in log.events if isinstance(e, Data)]
    assert data == [
        *[
            (c, side, b'{"n":%d}' % i)
            for i in range(3)
            for c, side in [("c1", "app"), ("c1", "outlet")]
        ],
        *[(c, side, b"m%d" % i) for i in range(3) for c, side in [("c2", "app"), ("c2", "outlet")]],
    ]
    assert counter.calls == {"tcp_start": 1, "websocket_start": 1}


async def test_websocket_on_other_paths_is_forwarded_but_not_recorded(
    make_relay: RelayFactory,
) -> None:
    async def handler(ws: Any) -> None:
        async for m in ws:
            await ws.send(m)

    async with websockets.serve(handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        log = EventLog()
        relay = await make_relay(outlet_ws_port=port, sinks=[log])
        base = f"ws://127.0.0.1:{relay.ws_address[1]}"
        async with websockets.connect(base + "/elsewhere") as ws:
            await ws.send("not ours")
            assert await asyncio.wait_for(ws.recv(), WAIT) == "not ours"
        async with websockets.connect(base + "/ws?x=1") as ws:
            await ws.send("ours")
            assert await asyncio.wait_for(ws.recv(), WAIT) == "ours"
        await log.wait_closed("c1")
    assert [e.data for e in log.events if isinstance(e, Data)] == [b"ours", b"ours"]


async def test_a_failing_sink_is_logged_once_and_never_stops_forwarding(
    make_relay: RelayFactory, caplog: pytest.LogCaptureFixture
) -> None:
    calls = 0

    def broken(event: object) -> None:
        nonlocal calls
        calls += 1
        raise RuntimeError("sink bug")

    outlet, log, relay = await relay_to_outlet(make_relay, echo, broken)
    messages = random_json_messages(random.Random(3), 200)
    reader, writer = await asyncio.open_connection(*relay.tcp_address)
    for m in messages:
        writer.write(m)
        await writer.drain()
        assert await asyncio.wait_for(reader.readexactly(len(m)), WAIT) == m
    writer.close()
    await log.wait_closed("c1")

    assert calls == len(log.events) == relay.addon.sink_errors
    assert log.stream("c1", "app") == b"".join(messages) == log.stream("c1", "outlet")
    errors = [
        r for r in caplog.records if r.name == "proxy.mitm.addon" and r.levelno >= logging.ERROR
    ]
    assert len(errors) == 1 and errors[0].exc_info is not None
    assert "sink bug" in str(errors[0].exc_info[1])
    await outlet.stop()


async def test_tcp_injection_is_tagged_and_refused_inside_a_json_value(
    make_relay: RelayFactory,
) -> None:
    outlet_got = bytearray()
    outlet_changed = asyncio.Event()
    outlet_writer: list[asyncio.StreamWriter] = []

    async def outlet_side(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        outlet_writer.append(writer)
        while data := await reader.read(65536):
            outlet_got.extend(data)
            outlet_changed.set()

    async def outlet_received(expected: bytes) -> None:
        while bytes(outlet_got) != expected:
            assert expected.startswith(bytes(outlet_got)), bytes(outlet_got)
            outlet_changed.clear()
            await asyncio.wait_for(outlet_changed.wait(), WAIT)

    outlet, log, relay = await relay_to_outlet(make_relay, outlet_side)
    reader, writer = await asyncio.open_connection(*relay.tcp_address)

    writer.write(b'{"packetID":100001,"payload":{"callbackName":20}}\n{"half":')
    await outlet_received(b'{"packetID":100001,"payload":{"callbackName":20}}\n{"half":')
    with pytest.raises(InjectError, match="inside a JSON value"):
        relay.inject("c1", "outlet", b'{"injected":1}')
    # the other direction is between values: allowed
    relay.inject("c1", "app", b'{"to_app":true}\n')
    assert await asyncio.wait_for(reader.readexactly(16), WAIT) == b'{"to_app":true}\n'

    writer.write(b'"x\\"}"}\n')
    expected = b'{"packetID":100001,"payload":{"callbackName":20}}\n{"half":"x\\"}"}\n'
    await outlet_received(expected)
    relay.inject("c1", "outlet", b'{"injected":1}\n')
    await outlet_received(expected + b'{"injected":1}\n')
    outlet_writer[0].write(b'{"reply":2}')
    assert await asyncio.wait_for(reader.readexactly(11), WAIT) == b'{"reply":2}'
    writer.close()
    await log.wait_closed("c1")

    data = [e for e in log.of("c1") if isinstance(e, Data)]
    injected = [(d.side, d.data) for d in data if d.injected]
    assert injected == [("outlet", b'{"to_app":true}\n'), ("app", b'{"injected":1}\n')]
    assert log.stream("c1", "app") == expected + b'{"injected":1}\n'
    with pytest.raises(InjectError, match="not live"):
        relay.inject("c1", "outlet", b"{}")
    await outlet.stop()


async def test_websocket_injection_reaches_the_app_tagged(make_relay: RelayFactory) -> None:
    async def handler(ws: Any) -> None:
        async for m in ws:
            await ws.send(m)

    async with websockets.serve(handler, "127.0.0.1", 0) as server:
        log = EventLog()
        relay = await make_relay(outlet_ws_port=server.sockets[0].getsockname()[1], sinks=[log])
        async with websockets.connect(f"ws://127.0.0.1:{relay.ws_address[1]}/ws") as ws:
            await ws.send("hello")
            assert await asyncio.wait_for(ws.recv(), WAIT) == "hello"
            relay.inject("c1", "app", b'{"pushed":1}')
            relay.inject("c1", "outlet", b"\x00bin", text=False)
            assert await asyncio.wait_for(ws.recv(), WAIT) == '{"pushed":1}'
            assert await asyncio.wait_for(ws.recv(), WAIT) == b"\x00bin"  # echoed by the outlet
        await log.wait_closed("c1")
    data = [(d.side, d.data, d.text, d.injected) for d in log.events if isinstance(d, Data)]
    assert ("outlet", b'{"pushed":1}', True, True) in data
    assert ("app", b"\x00bin", False, True) in data
    assert ("outlet", b"\x00bin", False, False) in data


async def test_stop_closes_listeners_and_live_connections(make_relay: RelayFactory) -> None:
    outlet_eof = asyncio.Event()

    async def outlet_side(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await echo(reader, writer)
        outlet_eof.set()

    outlet, log, relay = await relay_to_outlet(make_relay, outlet_side)
    tcp_addr, ws_addr = relay.tcp_address, relay.ws_address
    reader, writer = await asyncio.open_connection(*tcp_addr)
    writer.write(b'{"a":1}')
    assert await asyncio.wait_for(reader.readexactly(7), WAIT) == b'{"a":1}'
    assert relay.active_connections == 1

    await relay.stop()

    assert await asyncio.wait_for(reader.read(), WAIT) == b""
    await asyncio.wait_for(outlet_eof.wait(), WAIT)
    close = log.of("c1")[-1]
    assert isinstance(close, Close) and close.by == "proxy"
    for addr in (tcp_addr, ws_addr):
        with pytest.raises(ConnectionRefusedError):
            await asyncio.open_connection(*addr)
    assert relay.active_connections == 0
    writer.close()
    await outlet.stop()


async def test_port_in_use_is_a_clear_error_and_leaves_no_relay_behind(
    make_relay: RelayFactory,
) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(RelayError, match=f"127.0.0.1:{port}: the port is already in use"):
            await make_relay(tcp_port=port)
    relay = await make_relay(tcp_port=port)  # the failed one released everything
    assert relay.tcp_address == ("127.0.0.1", port)


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"listen_host": "192.0.2.1"}, "no such local address"),
        ({"listen_host": "no.such.host.invalid"}, "cannot listen"),
    ],
)
async def test_bad_listen_address_is_a_clear_error(
    make_relay: RelayFactory, kw: dict[str, Any], message: str
) -> None:
    with pytest.raises(RelayError, match=message):
        await make_relay(**kw)


async def test_bad_outlet_host_is_a_clear_error(confdir: str) -> None:
    relay = Relay("not a host!", tcp_port=0, ws_port=0, confdir=confdir)
    with pytest.raises(RelayError, match="bad outlet or listen address"):
        await relay.start()


def test_addon_module_is_a_mitmproxy_script() -> None:
    """`mitmdump -s proxy/addon.py` needs `addons`; the contentview must decode."""
    import proxy.mitm.addon as module

    assert [type(a).__name__ for a in module.addons] == ["InvisAddon"]
    text = module.describe_chunk(
        b'{"packetID":221040,"payload":{"callbackName":20}}\n{"sn":', "app", "tcp"
    )
    assert text.startswith("# cb20 Request available updates\n{\n")
    assert text.endswith('# incomplete here (continues in the next chunk)\n{"sn":')
    assert Path(module.__file__ or "").name == "addon.py"


async def test_a_long_lived_connection_does_not_pile_up_messages_in_mitmproxy(
    make_relay: RelayFactory,
) -> None:
    """A device connection lives for days; the relay records, mitmproxy must not hoard."""

    async def outlet_side(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while line := await reader.readline():
            writer.write(line)
            await writer.drain()

    outlet, log, relay = await relay_to_outlet(make_relay, outlet_side)
    assert relay.tcp_address is not None
    reader, writer = await asyncio.open_connection(*relay.tcp_address)
    sent = bytearray()
    for i in range(300):
        line = b'{"packetID":%d,"payload":{"callbackName":9}}\n' % (100000 + i)
        writer.write(line)
        sent += line
        assert await asyncio.wait_for(reader.readline(), WAIT) == line
    assert relay.addon.flow_history("c1") <= 1
    recorded = [e for e in log.of("c1") if isinstance(e, Data)]
    for side in ("app", "outlet"):  # every byte is still recorded, both ways
        assert b"".join(e.data for e in recorded if e.side == side) == sent
    writer.close()
    await log.wait_closed("c1")
    await outlet.stop()
