"""The simulator's reboot while connections come and go (real sockets, the real simulator)."""

from __future__ import annotations

import asyncio
import json

from proxy.sim.outlet import OutletSimulator, SimConfig


async def test_an_app_leaving_while_the_reboot_flushes_another_does_not_keep_the_outlet_down() -> (
    None
):
    """The reboot lets every connection's queued replies go out before it drops them; an
    app that hangs up meanwhile must not stop the outlet from coming back up."""
    up_again = asyncio.Event()
    idle: list[asyncio.StreamWriter] = []

    def on_event(line: str) -> None:
        if line.startswith("outlet restart (cb5): dropping"):
            idle[0].transport.abort()  # leaves while the reboot waits on the slow one
        if line.startswith("outlet up again"):
            up_again.set()

    config = SimConfig(
        seed=1,
        reboot_seconds=0.05,
        sensor_interval=0,
        tcp_merge=0.0,
        tcp_split=1.0,
        split_pause=0.8,  # the slow one's queue stays full this long (the flush waits 1 s)
    )
    async with OutletSimulator(config, on_event=on_event) as sim:
        _, idle_writer = await asyncio.open_connection("127.0.0.1", sim.tcp_port)
        idle.append(idle_writer)
        slow_reader, slow = await asyncio.open_connection("127.0.0.1", sim.tcp_port)
        requests = [{"packetID": 100001 + i, "payload": {"callbackName": 12}} for i in range(3)]
        slow.write("".join(json.dumps(r) + "\n" for r in requests).encode())
        await slow_reader.read(1)  # the first half of the first reply: the rest is queued
        _, restarter = await asyncio.open_connection("127.0.0.1", sim.tcp_port)
        restarter.write(b'{"packetID":100009,"payload":{"callbackName":5}}\n')
        await asyncio.wait_for(up_again.wait(), 10)
        assert sim.is_up
        slow.transport.abort()
        restarter.transport.abort()
