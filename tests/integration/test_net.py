"""The shared endpoints over real sockets: one server and one client link for both
transports, as the simulator, replay serve, the scripted app and replay send use them."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from proxy.core.events import Side, Transport
from proxy.core.framing import Frame
from proxy.net.client import CONNECT_ERRORS, LinkClosed, OutletLink
from proxy.net.peers import peer_text, ws_url
from proxy.net.server import Endpoint, ListenError, OutletServer
from proxy.sim.scripted_app import ScriptedApp


class Echo:
    """Answers every valid value with the same bytes plus a newline; can play 'down'."""

    def __init__(self) -> None:
        self.down: str | None = None
        self.refused = 0
        self.frames: list[tuple[int, Frame]] = []
        self.opened: list[Endpoint] = []
        self.ended: list[Endpoint] = []
        self.changed = asyncio.Event()

    def refusal(self, transport: Transport, peer: str) -> str | None:
        self.refused += self.down is not None
        return self.down

    def connected(self, endpoint: Endpoint) -> None:
        self.opened.append(endpoint)
        self.changed.set()

    def frame(self, endpoint: Endpoint, frame: Frame) -> None:
        self.frames.append((endpoint.number, frame))
        if frame.error is None:
            asyncio.get_running_loop().create_task(endpoint.write(frame.raw + b"\n"))
        self.changed.set()

    async def disconnected(self, endpoint: Endpoint) -> None:
        self.ended.append(endpoint)
        self.changed.set()

    async def until(self, condition: object, timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout):
            while not condition():  # type: ignore[operator]
                self.changed.clear()
                await self.changed.wait()


class Collector:
    def __init__(self) -> None:
        self.frames: list[Frame] = []
        self.chunks: list[tuple[bytes, bool]] = []
        self.sent: list[tuple[bytes, bool]] = []
        self.ended = asyncio.Event()
        self.changed = asyncio.Event()

    def on_frame(self, link: OutletLink, frame: Frame) -> None:
        self.frames.append(frame)
        self.changed.set()

    def on_chunk(self, link: OutletLink, side: Side, data: bytes, text: bool) -> None:
        (self.chunks if side == "outlet" else self.sent).append((data, text))

    def on_end(self, link: OutletLink) -> None:
        self.ended.set()

    async def until_frames(self, n: int, timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout):
            while len(self.frames) < n:
                self.changed.clear()
                await self.changed.wait()


@pytest.fixture
async def served() -> AsyncIterator[tuple[OutletServer, Echo]]:
    echo = Echo()
    server = OutletServer(echo, "127.0.0.1", 0, 0)
    await server.start()
    try:
        yield server, echo
    finally:
        await server.stop()


async def open_link(server: OutletServer, transport: Transport, got: Collector) -> OutletLink:
    port = server.tcp_port if transport == "tcp" else server.ws_port
    assert port is not None
    return await OutletLink.open(
        transport,
        "127.0.0.1",
        port,
        on_frame=got.on_frame,
        on_chunk=got.on_chunk,
        on_end=got.on_end,
    )


@dataclass
class Linked:
    """One app link to the served echo and what it collected: the setup most tests share."""

    server: OutletServer
    echo: Echo
    got: Collector
    link: OutletLink


async def linked_to(served: tuple[OutletServer, Echo], transport: Transport) -> Linked:
    server, echo = served
    got = Collector()
    return Linked(server, echo, got, await open_link(server, transport, got))


@pytest.fixture
async def tcp(served: tuple[OutletServer, Echo]) -> Linked:
    return await linked_to(served, "tcp")


@pytest.fixture
async def ws(served: tuple[OutletServer, Echo]) -> Linked:
    return await linked_to(served, "ws")


@pytest.fixture(params=["tcp", "ws"])
async def linked(served: tuple[OutletServer, Echo], request: pytest.FixtureRequest) -> Linked:
    """A link over each transport in turn, for what both must do alike."""
    return await linked_to(served, request.param)


async def test_tcp_values_split_and_merged_reach_the_handler_and_come_back(
    tcp: Linked,
) -> None:
    echo, got, link = tcp.echo, tcp.got, tcp.link
    await link.send(b'{"a":1}{"b":')
    await echo.until(lambda: len(echo.frames) == 1)
    await link.send(b'2}\n  {"c":3}\n')
    await echo.until(lambda: len(echo.frames) == 3)
    assert [f.raw for _, f in echo.frames] == [b'{"a":1}', b'{"b":2}', b'{"c":3}']
    assert {n for n, _ in echo.frames} == {echo.opened[0].number}
    await got.until_frames(3)
    assert [f.value for f in got.frames] == [{"a": 1}, {"b": 2}, {"c": 3}]
    assert b"".join(c for c, _ in got.chunks) == b'{"a":1}\n{"b":2}\n{"c":3}\n'
    await link.close()
    await echo.until(lambda: len(echo.ended) == 1)
    assert link.closed_by_app and got.ended.is_set()


async def test_garbage_is_an_invalid_frame_and_a_trailing_number_ends_with_the_connection(
    tcp: Linked,
) -> None:
    echo = tcp.echo
    await tcp.link.send(b'\xff\xfe garbage {"ok":true} 42')
    await echo.until(lambda: len(echo.frames) == 2)
    assert echo.frames[0][1].error is not None
    assert echo.frames[1][1].value == {"ok": True}
    await tcp.link.close()
    await echo.until(lambda: len(echo.ended) == 1)
    assert [f.value for _, f in echo.frames][-1] == 42  # completed by the close


async def test_websocket_text_and_binary_messages_are_one_frame_each(ws: Linked) -> None:
    echo, got, link = ws.echo, ws.got, ws.link
    assert link.transport == "ws"
    await link.send(b'{"x":[1,2]}')
    await got.until_frames(1)
    assert got.frames[0].value == {"x": [1, 2]}
    assert got.chunks == [(b'{"x":[1,2]}\n', True)]
    # binary from the outlet side: not UTF-8, so it goes out as a binary message
    await echo.opened[0].write(b"\xff\x00")
    await got.until_frames(2)
    assert got.chunks[-1] == (b"\xff\x00", False)
    assert got.frames[1].error is not None
    await link.close()
    await echo.until(lambda: len(echo.ended) == 1)


async def test_a_down_outlet_refuses_tcp_by_reset_and_the_websocket_with_503(
    served: tuple[OutletServer, Echo],
) -> None:
    server, echo = served
    echo.down = "outlet down (rebooting)"
    got = Collector()
    link = await open_link(server, "tcp", got)  # accepted by the kernel, then reset
    await asyncio.wait_for(got.ended.wait(), 10)
    assert not echo.opened
    with pytest.raises(LinkClosed):  # the reader saw the reset: the link is gone
        await link.send(b"{}\n")
    assert server.ws_port is not None
    with pytest.raises(InvalidStatus) as refused:
        await connect(f"ws://127.0.0.1:{server.ws_port}/ws")
    assert refused.value.response.status_code == 503
    assert b"rebooting" in refused.value.response.body
    assert issubclass(InvalidStatus, CONNECT_ERRORS)


async def test_only_the_ws_path_is_served(served: tuple[OutletServer, Echo]) -> None:
    server, _ = served
    with pytest.raises(InvalidStatus) as refused:
        await connect(f"ws://127.0.0.1:{server.ws_port}/other")
    assert refused.value.response.status_code == 404


async def test_stop_drops_every_connection_and_closes_the_listeners() -> None:
    echo = Echo()
    server = OutletServer(echo, "127.0.0.1", 0, 0)
    await server.start()
    tcp, ws = Collector(), Collector()
    await open_link(server, "tcp", tcp)
    await open_link(server, "ws", ws)
    await echo.until(lambda: len(echo.opened) == 2)
    port = server.tcp_port
    await server.stop()
    await asyncio.wait_for(tcp.ended.wait(), 10)
    await asyncio.wait_for(ws.ended.wait(), 10)
    assert len(echo.ended) == 2 and not server.listening
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", port)


async def test_a_taken_port_is_one_clear_error_and_binds_nothing() -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    try:
        server = OutletServer(Echo(), "127.0.0.1", 0, taken.getsockname()[1])
        with pytest.raises(ListenError, match=r"WebSocket port .*address already in use"):
            await server.start()
        assert not server.listening
    finally:
        taken.close()


async def test_an_unreachable_outlet_raises_a_connect_error() -> None:
    free = socket.socket()
    free.bind(("127.0.0.1", 0))
    port = free.getsockname()[1]
    free.close()
    with pytest.raises(CONNECT_ERRORS):
        await OutletLink.open("tcp", "127.0.0.1", port, on_frame=lambda link, frame: None)


async def test_the_tap_sees_what_the_app_sends_and_the_link_knows_both_real_addresses(
    linked: Linked,
) -> None:
    server, echo, got, link = linked.server, linked.echo, linked.got, linked.link
    await link.send(b'{"a":1}\n')
    await link.send(b"\xff\n")
    await echo.until(lambda: len(echo.frames) >= 1)
    text = link.transport == "ws"  # a WebSocket send is a text message; TCP says if it is UTF-8
    assert got.sent == [(b'{"a":1}\n', True), (b"\xff\n", text)]
    endpoint = echo.opened[0]
    assert (link.local, link.remote) == (endpoint.peer, endpoint.local)
    assert link.remote == peer_text(("127.0.0.1", server.tcp_port if not text else server.ws_port))
    await link.close()


async def test_abort_hangs_up_at_once_and_both_ends_see_it(linked: Linked) -> None:
    echo, got, link = linked.echo, linked.got, linked.link
    await echo.until(lambda: len(echo.opened) == 1)
    await link.abort()
    assert link.closed and link.closed_by_app and got.ended.is_set()
    await echo.until(lambda: len(echo.ended) == 1)
    with pytest.raises(LinkClosed):
        await link.send(b"{}")
    assert got.sent == []  # nothing is reported as sent that was not


async def test_a_link_the_outlet_dropped_refuses_to_send_and_the_server_cannot_write(
    linked: Linked,
) -> None:
    echo, got, link = linked.echo, linked.got, linked.link
    await echo.until(lambda: len(echo.opened) == 1)
    endpoint = echo.opened[0]
    endpoint.abort()  # as a rebooting outlet: no goodbye
    await asyncio.wait_for(got.ended.wait(), 10)
    assert not link.closed_by_app
    with pytest.raises(LinkClosed):
        await link.send(b"{}\n")
    await echo.until(lambda: len(echo.ended) == 1)
    with pytest.raises(OSError):  # one error type for both transports
        await endpoint.write(b"{}\n")


async def test_the_scripted_app_retries_a_websocket_refused_at_the_handshake(
    served: tuple[OutletServer, Echo],
) -> None:
    server, echo = served
    echo.down = "outlet down (rebooting)"
    lines: list[str] = []
    app = ScriptedApp(
        ws_url=server.ws_url, timeout=1.0, backoff=0.01, backoff_max=0.05, on_line=lines.append
    )
    result = await app.run()
    assert (result.outcome, result.reason) == ("timeout", "could not connect within 1 s")
    assert echo.refused >= 2 and not echo.opened
    assert any(
        "connect failed (server rejected WebSocket connection: HTTP 503)" in x for x in lines
    )


def test_addresses_put_ipv6_hosts_in_brackets_once() -> None:
    assert peer_text(("::1", 3333, 0, 0)) == "[::1]:3333"
    assert peer_text(("10.0.0.5", 80)) == "10.0.0.5:80"
    assert ws_url("::1", 80) == ws_url("[::1]", 80) == "ws://[::1]:80/ws"
    assert ws_url("outlet.local", 8080) == "ws://outlet.local:8080/ws"


async def test_a_stopped_server_starts_again_on_the_ports_it_had() -> None:
    """The simulator's reboot: listeners closed, then reopened where apps will look."""
    echo = Echo()
    server = OutletServer(echo, "127.0.0.1", 0, 0)
    await server.start()
    ports = (server.tcp_port, server.ws_port)
    await server.stop()
    await server.start()
    try:
        assert (server.tcp_port, server.ws_port) == ports and server.listening
        transports: tuple[Transport, ...] = ("tcp", "ws")
        for transport in transports:
            got = Collector()
            link = await open_link(server, transport, got)
            await link.send(b'{"back":true}')
            await got.until_frames(1)
            assert got.frames[0].value == {"back": True}
            await link.close()
    finally:
        await server.stop()
