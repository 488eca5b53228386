"""The scripted app against the simulator: whole updates, failures, and what it reports."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest

from proxy.sim.outlet import Fault, OutletSimulator, SimConfig
from proxy.sim.scripted_app import AppResult, ScriptedApp
from proxy.sim.state import Firmware

FW = Firmware()
FAST: dict[str, Any] = {
    "ota_seconds": 0.3,
    "reboot_seconds": 0.2,
    "restart_seconds": 0.1,
    "sensor_interval": 0.05,
    "seed": 5,
}


def sim(**kwargs: Any) -> OutletSimulator:
    return OutletSimulator(SimConfig(**{**FAST, **kwargs}))


async def run_app(s: OutletSimulator, transport: str, **kwargs: Any) -> tuple[AppResult, list[str]]:
    lines: list[str] = []
    where: dict[str, Any] = {"tcp_port": s.tcp_port} if transport == "tcp" else {"ws_url": s.ws_url}
    options: dict[str, Any] = {"timeout": 20.0, "poll_interval": 0.05, "seed": 9, **kwargs}
    app = ScriptedApp("127.0.0.1", **where, **options, on_line=lines.append)
    return await app.run(), lines


def callbacks(result: AppResult, callback: int) -> list[Any]:
    return [m for m in result.messages if m.callback == callback]


async def test_reva_update_over_websocket_succeeds_and_is_verified() -> None:
    async with sim(revision="A") as s:
        result, lines = await run_app(s, "ws")
    assert result.outcome == "succeeded", result.reason
    assert (result.fw_before, result.fw_expected, result.fw_after) == (
        FW.im,
        FW.im_available,
        FW.im_available,
    )
    assert result.verified is True
    assert result.transport == "ws" and result.reconnects >= 1
    pid = result.request_packet_id
    acks = [m for m in result.messages if m.packet_id == pid and m.callback is None]
    assert [a.puback for a in acks] == [1]
    assert (3, 100) in result.progress and result.progress[-1] == (1, 100)
    assert any("ignoring the spurious early result [1, 0]" in line for line in lines)
    after = [m for m in callbacks(result, 12) if m.conn > 1]
    assert after and after[0].args["IM"]["fw_rev"] == FW.im_available
    assert lines[-1].endswith("outcome: succeeded (now running 0.0.2)")


async def test_revb_update_over_tcp_survives_two_restarts() -> None:
    async with sim(revision="B", tcp_merge=0.5, tcp_split=0.3) as s:
        result, _ = await run_app(s, "tcp")
        merged, split = s.stats.merged, s.stats.split
    assert result.outcome == "succeeded", result.reason
    assert result.fw_after == FW.im_available == result.fw_expected
    assert result.reconnects >= 2  # the restart at cb21 and the reboot after the result
    pid = result.request_packet_id
    sync = callbacks(result, 21)
    assert len(sync) == 1 and sync[0].packet_id == pid and sync[0].args == [1, 1]
    assert sync[0].conn == 2  # it arrives on the connection opened after the restart
    assert not any(m.packet_id == pid and m.callback is None for m in result.messages)
    assert result.progress[-1] == (1, 100)
    assert merged + split > 0  # the app read through merged and split TCP writes
    cb21_sent = [m for m in result.sent if m.callback == 21]
    assert [(m.packet_id, m.args) for m in cb21_sent] == [(pid, [1, 0])]


async def test_deco_update_is_verified_without_a_reconnect() -> None:
    async with sim(revision="B") as s:
        result, _ = await run_app(s, "tcp", target="deco", method=1)
    assert result.outcome == "succeeded", result.reason
    assert (result.fw_before, result.fw_after) == (FW.pm, FW.pm_available)
    assert result.reconnects == 0
    assert result.progress[-1] == (2, 100)


async def test_refusal_is_reported() -> None:
    async with sim(revision="A", fault=Fault("refuse")) as s:
        result, _ = await run_app(s, "ws")
    assert result.outcome == "refused"
    assert result.fw_after is None and result.progress == []


async def test_main_phase_failure_is_reported() -> None:
    async with sim(revision="B", fault=Fault("fail-at", 60)) as s:
        result, _ = await run_app(s, "tcp")
    assert result.outcome == "failed"
    assert result.reason == "cb23 [1, 0] after progress"
    assert result.progress[-1] == (1, 60)


async def test_revb_sync_failure_is_reported() -> None:
    async with sim(
        revision="B", firmware=Firmware(im_available="0.0.1", www_available="0.1.2")
    ) as s:
        result, _ = await run_app(s, "tcp")
    assert result.outcome == "failed"
    assert result.reason == "synchronous cb21 reported status 0"


async def test_a_stalled_update_times_out() -> None:
    async with sim(revision="A", fault=Fault("stall-at", 20)) as s:
        result, _ = await run_app(s, "ws", stall_timeout=0.5)
    assert result.outcome == "timeout"
    assert result.reason.startswith("stalled")
    assert result.progress[-1] == (1, 20)


async def test_no_outlet_means_a_timeout_not_a_hang() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound, not listening: connections are refused
        app = ScriptedApp("127.0.0.1", tcp_port=port, timeout=0.5)
        result = await app.run()
    assert result.outcome == "timeout"
    assert result.reason == "could not connect within 0.5 s"


def test_exactly_one_transport_must_be_chosen() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        ScriptedApp("127.0.0.1")
    with pytest.raises(ValueError, match="exactly one"):
        ScriptedApp("127.0.0.1", tcp_port=1, ws_url="ws://127.0.0.1:1/ws")


async def test_backoff_holds_when_a_relay_accepts_but_the_outlet_is_down() -> None:
    """Through a proxy, connecting succeeds even while the outlet reboots; the app must
    still back off instead of spinning on connections that close at once."""
    accepted = 0

    async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal accepted
        accepted += 1
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", s.tcp_port)
        except OSError:
            writer.close()
            return

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except OSError:
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    async with sim(revision="B", restart_seconds=0.4, reboot_seconds=0.4) as s:
        front = await asyncio.start_server(relay, "127.0.0.1", 0)
        async with front:
            port = front.sockets[0].getsockname()[1]
            app = ScriptedApp("127.0.0.1", tcp_port=port, timeout=20, backoff=0.02, seed=1)
            result = await app.run()
    assert result.outcome == "succeeded", result.reason
    assert result.fw_after == FW.im_available
    # Two outages of 0.4 s with a 0.02 s backoff that doubles: a handful of tries each.
    assert 2 <= result.reconnects <= 14, result.reconnects
    assert accepted == result.reconnects + 1
