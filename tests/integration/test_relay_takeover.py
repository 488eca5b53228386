"""The layer takeover runs only on the mitmproxy it was written for; elsewhere, hooks relay.

A mitmproxy with another major version may have moved the internals the takeover
leans on, so the relay must then fall back to the ordinary message hooks and still
relay and record everything.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest
import websockets

from proxy.core.events import Data
from proxy.mitm.takeover import LayerTakeover
from proxy.sim.outlet import OutletSimulator, SimConfig
from tests.integration.relay_support import WAIT, EventLog, RelayFactory


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


def _reply_to(pid: int, lines: list[bytes]) -> bool:
    return any(json.loads(line).get("packetID") == pid for line in lines if line.strip())


async def test_another_mitmproxy_major_relays_through_the_hooks_and_says_so_once(
    make_relay: RelayFactory, caplog: pytest.LogCaptureFixture
) -> None:
    from mitmproxy import ctx

    caplog.set_level(logging.WARNING, logger="proxy.mitm.takeover")
    cfg = SimConfig(seed=9, sensor_interval=0, tcp_merge=0, tcp_split=0)
    async with OutletSimulator(cfg) as sim:
        log = EventLog()
        relay = await make_relay(
            outlet_tcp_port=sim.tcp_port,
            outlet_ws_port=sim.ws_port,
            sinks=[log],
            takeover=LayerTakeover("13.0.0"),
        )
        hooks = _MessageHooks()
        ctx.master.addons.add(hooks)  # type: ignore[no-untyped-call]
        assert relay.tcp_address is not None and relay.ws_address is not None
        for pid, conn in [(300001, "c1"), (300002, "c2")]:  # the warning still comes once
            reader, writer = await asyncio.open_connection(*relay.tcp_address)
            writer.write(b'{"packetID":%d,"payload":{"callbackName":20}}\n' % pid)
            got: list[bytes] = []
            while not _reply_to(pid, got):
                got.append(await asyncio.wait_for(reader.readline(), WAIT))
            writer.close()
            await log.wait_closed(conn)
            assert log.stream(conn, "outlet").startswith(b"".join(got))
        async with websockets.connect(f"ws://127.0.0.1:{relay.ws_address[1]}/ws") as ws:
            await ws.send('{"packetID":300003,"payload":{"callbackName":20}}')
            texts = [await asyncio.wait_for(ws.recv(), WAIT)]
            while not _reply_to(300003, [str(t).encode() for t in texts]):
                texts.append(await asyncio.wait_for(ws.recv(), WAIT))
        await log.wait_closed("c3")

    data = [e for e in log.events if isinstance(e, Data)]
    assert {(e.conn, e.side) for e in data} == {
        (c, side) for c in ("c1", "c2", "c3") for side in ("app", "outlet")
    }
    # every message went through mitmproxy's hooks: the takeover skips them all
    assert hooks.tcp == sum(e.conn != "c3" for e in data)
    assert hooks.ws == sum(e.conn == "c3" for e in data)
    warnings = [r.getMessage() for r in caplog.records if r.name == "proxy.mitm.takeover"]
    assert len(warnings) == 1
    assert "mitmproxy 12.x, running 13.0.0" in warnings[0] and "ordinary hooks" in warnings[0]
