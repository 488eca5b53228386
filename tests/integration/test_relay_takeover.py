"""The layer takeover runs only on the mitmproxy it was written for; elsewhere, hooks relay.

A mitmproxy with another major version may have moved the internals the takeover
leans on, so the relay must then fall back to the ordinary message hooks and still
relay and record everything.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
import websockets

from proxy.core.events import Data
from proxy.mitm.takeover import LayerTakeover
from tests.integration.relay_support import WAIT, EventLog, RelayFactory, TcpOutlet, echo


@pytest.mark.parametrize(
    ("version", "supported"),
    [("12.3.1", True), ("12.0.0.dev", True), ("13.0.0", False), ("11.1.3", False), ("1", False)],
)
def test_only_the_major_version_written_for_is_taken_over(version: str, supported: bool) -> None:
    assert LayerTakeover(version).supported is supported
    assert LayerTakeover(version).applies() is supported


class _MessageHooks:
    """A mitmproxy addon counting the per-message hooks fired (what the takeover skips)."""

    def __init__(self) -> None:
        self.tcp = 0
        self.ws = 0

    def tcp_message(self, flow: Any) -> None:
        self.tcp += 1

    def websocket_message(self, flow: Any) -> None:
        self.ws += 1


async def test_another_mitmproxy_major_relays_through_the_hooks_and_says_so_once(
    make_relay: RelayFactory, caplog: pytest.LogCaptureFixture
) -> None:
    from mitmproxy import ctx

    caplog.set_level(logging.WARNING, logger="proxy.mitm.takeover")

    async def ws_echo(ws: Any) -> None:
        async for m in ws:
            await ws.send(m)

    outlet = TcpOutlet(echo)
    await outlet.start()
    async with websockets.serve(ws_echo, "127.0.0.1", 0) as server:
        log = EventLog()
        relay = await make_relay(
            outlet_tcp_port=outlet.port,
            outlet_ws_port=server.sockets[0].getsockname()[1],
            sinks=[log],
            takeover=LayerTakeover("13.0.0"),
        )
        hooks = _MessageHooks()
        ctx.master.addons.add(hooks)  # type: ignore[no-untyped-call]
        assert relay.tcp_address is not None and relay.ws_address is not None
        for conn in ("c1", "c2"):  # two connections: the warning still comes once
            reader, writer = await asyncio.open_connection(*relay.tcp_address)
            for i in range(3):
                writer.write(b'{"n":%d}' % i)
                assert await asyncio.wait_for(reader.readexactly(7), WAIT) == b'{"n":%d}' % i
            writer.close()
            await log.wait_closed(conn)
        async with websockets.connect(f"ws://127.0.0.1:{relay.ws_address[1]}/ws") as ws:
            for i in range(3):
                await ws.send(f"m{i}")
                assert await asyncio.wait_for(ws.recv(), WAIT) == f"m{i}"
        await log.wait_closed("c3")
    await outlet.stop()

    data = [(e.conn, e.side, e.data) for e in log.events if isinstance(e, Data)]
    both_ways = [(side, i) for i in range(3) for side in ("app", "outlet")]
    assert data == [
        *[(c, side, b'{"n":%d}' % i) for c in ("c1", "c2") for side, i in both_ways],
        *[("c3", side, b"m%d" % i) for side, i in both_ways],
    ]
    assert (hooks.tcp, hooks.ws) == (12, 6)  # every message went through mitmproxy's hooks
    warnings = [r.getMessage() for r in caplog.records if r.name == "proxy.mitm.takeover"]
    assert len(warnings) == 1
    assert "mitmproxy 12.x, running 13.0.0" in warnings[0] and "ordinary hooks" in warnings[0]
