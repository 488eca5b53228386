"""Replay with real sockets: record the simulator through the real relay, then replay it.

``serve`` must make the scripted app live through the same OTA story as it did against
the simulator; ``send`` must find no difference against the same simulator and the
right one against a simulator offering other firmware.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from proxy.core.analysis import analyze
from proxy.mitm.relay import Relay
from proxy.net.addresses import Listener, Outlet
from proxy.replay.script import Script, build_script
from proxy.replay.send import SendOptions, send_replay
from proxy.replay.serve import ReplayServer, ServeOptions
from proxy.sim.outlet import OutletSimulator, SimConfig
from proxy.sim.scripted_app import AppResult, ScriptedApp
from proxy.sim.state import Firmware
from proxy.store.capture import CaptureWriter
from proxy.store.recording import load_events
from tests.integration.cli_support import REPO, Command, spawn

WAIT = 30.0
SCENARIOS = REPO / "tests" / "scenarios"
OTA_CALLBACKS = (21, 22, 23)


@pytest.fixture(scope="module")
def confdir(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(tmp_path_factory.mktemp("mitmproxy-conf"))


def sim_config(rev: str, available: str = "0.0.2", www_available: str = "0.3.0") -> SimConfig:
    return SimConfig(
        revision=rev,  # type: ignore[arg-type]
        firmware=Firmware(im="0.0.1", im_available=available, www_available=www_available),
        ota_seconds=0.3,
        reboot_seconds=0.2,
        restart_seconds=0.1,
        sensor_interval=0.1,
        seed=11,
    )


def app_for(transport: str, host_port: int | str, seed: int) -> ScriptedApp:
    if transport == "tcp":
        assert isinstance(host_port, int)
        return ScriptedApp(tcp_port=host_port, seed=seed, timeout=WAIT)
    assert isinstance(host_port, str)
    return ScriptedApp(ws_url=host_port, seed=seed, timeout=WAIT)


async def record(
    path: Path, config: SimConfig, transport: str, confdir: str
) -> tuple[AppResult, list[str]]:
    """Run the scripted app against the simulator through the real relay, recording."""
    sim_log: list[str] = []
    with CaptureWriter(path, {"title": f"rev{config.revision} via relay"}) as writer:
        async with OutletSimulator(config, on_event=sim_log.append) as sim:
            relay = Relay(
                "127.0.0.1",
                outlet_tcp_port=sim.tcp_port,
                outlet_ws_port=sim.ws_port,
                tcp_port=0,
                ws_port=0,
                sinks=[writer.write],
                confdir=confdir,
            )
            async with relay:
                if transport == "tcp":
                    assert relay.tcp_address is not None
                    app = app_for("tcp", relay.tcp_address[1], seed=1)
                else:
                    assert relay.ws_address is not None
                    app = app_for("ws", f"ws://127.0.0.1:{relay.ws_address[1]}/ws", seed=1)
                result = await app.run()
    return result, sim_log


def script_of(path: Path) -> Script:
    with load_events(path) as src:
        return build_script(analyze(src.events))


def ota_story(result: AppResult) -> list[tuple[int | None, Any]]:
    """What the app heard about its update, in order (sensors and re-reads left out)."""
    return [(m.callback, m.args) for m in result.messages if m.callback in OTA_CALLBACKS]


def connections_heard(result: AppResult) -> int:
    return len({m.conn for m in result.messages})


# ---------------------------------------------------------------------- serve


@pytest.mark.parametrize(("rev", "transport"), [("B", "tcp"), ("A", "ws")])
async def test_serve_replays_the_ota_story_to_the_app(
    tmp_path: Path, confdir: str, rev: str, transport: str
) -> None:
    path = tmp_path / f"rev{rev}.invcap"
    recorded, _ = await record(path, sim_config(rev), transport, confdir)
    assert recorded.outcome == "succeeded"  # the recording itself is a good one
    script = script_of(path)

    lines: list[str] = []
    problems: list[str] = []
    opts = ServeOptions(Listener(tcp_port=0, ws_port=0))
    async with ReplayServer(script, opts, on_line=lines.append, on_problem=problems.append) as srv:
        target: int | str = srv.tcp_port if transport == "tcp" else srv.ws_url  # type: ignore[assignment]
        replayed = await app_for(transport, target, seed=99).run()

    assert replayed.outcome == "succeeded", replayed.reason
    assert replayed.fw_before == recorded.fw_before == "0.0.1"
    assert replayed.fw_after == recorded.fw_after == "0.0.2"
    assert ota_story(replayed) == ota_story(recorded)
    assert replayed.progress == recorded.progress
    # the app picked a new packetID for cb21, and the replay answered under it
    assert replayed.request_packet_id != recorded.request_packet_id
    under_request_id = [m for m in replayed.messages if m.packet_id == replayed.request_packet_id]
    if rev == "B":
        # no ack; the synchronous cb21 after the restart carries the new request's id
        (sync,) = under_request_id
        assert (sync.callback, sync.args) == (21, [1, 1])
        # before the restart, during the update, after the reboot
        assert connections_heard(replayed) == connections_heard(recorded) == 3
        assert sync.conn > replayed.sent[[s.callback for s in replayed.sent].index(21)].conn
    else:
        (ack,) = under_request_id
        assert (ack.callback, ack.puback) == (None, 1)
        assert connections_heard(replayed) == connections_heard(recorded) == 2
    assert replayed.reconnects >= connections_heard(recorded) - 1
    assert sum("outlet closes it" in line for line in lines) == connections_heard(recorded) - 1
    assert problems == []
    assert {r.how for r in srv.reports} <= {"exact", "reused"}


async def _tcp_exchange(
    port: int, requests: list[dict[str, Any]], replies: int
) -> list[dict[str, Any]]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for request in requests:
            writer.write(json.dumps(request).encode() + b"\n")
        await writer.drain()
        out: list[dict[str, Any]] = []
        async with asyncio.timeout(WAIT):
            while len(out) < replies:
                line = await reader.readline()
                assert line, "the replay closed the connection"
                out.append(json.loads(line))
        return out
    finally:
        writer.close()


def _req(pid: int, callback: int, args: Any = None) -> dict[str, Any]:
    payload: dict[str, Any] = {"callbackName": callback}
    if args is not None:
        payload["callbackArgs"] = args
    return {"packetID": pid, "payload": payload}


async def test_serve_answers_unmatched_requests_as_told() -> None:
    script = script_of(SCENARIOS / "revb_outlet_tcp.jsonl")

    problems: list[str] = []
    opts = ServeOptions(Listener(tcp_port=0, ws_port=None))
    async with ReplayServer(script, opts, on_problem=problems.append) as srv:
        assert srv.tcp_port is not None
        got = await _tcp_exchange(srv.tcp_port, [_req(123456, 99), _req(234567, 20)], 2)
    assert got[0] == {"sn": "11B27540076", "packetID": 123456, "PUBACK": 0}
    assert got[1]["packetID"] == 234567 and got[1]["payload"]["callbackName"] == 20
    assert got[1]["payload"]["callbackArgs"]["IM"]["available_fw_rev"] == "1.3.0"
    assert len(problems) == 1 and "cb99" in problems[0] and "PUBACK 0" in problems[0]

    # silence: the matched reply is the first thing the app hears
    opts = ServeOptions(Listener(tcp_port=0, ws_port=None), unmatched="silence")
    async with ReplayServer(script, opts) as srv:
        assert srv.tcp_port is not None
        got = await _tcp_exchange(srv.tcp_port, [_req(123456, 99), _req(234567, 20)], 1)
        assert got[0]["packetID"] == 234567
        assert [r.how for r in srv.reports] == ["unmatched", "exact"]

    # strict: the server says it must stop
    opts = ServeOptions(Listener(tcp_port=0, ws_port=None), strict=True)
    async with ReplayServer(script, opts) as srv:
        assert srv.tcp_port is not None
        got = await _tcp_exchange(srv.tcp_port, [_req(123456, 99), _req(234567, 20)], 1)
        assert got[0]["packetID"] == 234567
        await asyncio.wait_for(srv.failed.wait(), WAIT)


async def test_serve_falls_back_to_other_arguments_and_reports_it() -> None:
    script = script_of(SCENARIOS / "revb_outlet_tcp.jsonl")
    problems: list[str] = []
    async with ReplayServer(
        script, ServeOptions(Listener(tcp_port=0, ws_port=None)), on_problem=problems.append
    ) as srv:
        assert srv.tcp_port is not None
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.tcp_port)
        writer.write(json.dumps(_req(345678, 21, [2, 1])).encode() + b"\n")
        await writer.drain()
        # the recorded cb21 was followed by the outlet closing the connection
        async with asyncio.timeout(WAIT):
            assert await reader.read() == b""
        writer.close()
    assert [r.how for r in srv.reports] == ["other-args"]
    assert len(problems) == 1 and "[2,1]" in problems[0] and "[1,0]" in problems[0]


# ---------------------------------------------------------------------- send


@pytest.fixture
async def up_to_date_capture(tmp_path: Path, confdir: str) -> AsyncIterator[Path]:
    """revA outlet with nothing to install: cb12, cb20, then cb21 refused with PUBACK 0."""
    path = tmp_path / "up-to-date.invcap"
    result, _ = await record(path, sim_config("A", "0.0.1", "0.1.2"), "ws", confdir)
    assert result.outcome == "refused"
    yield path


async def test_send_against_the_same_outlet_finds_no_difference(
    up_to_date_capture: Path, tmp_path: Path
) -> None:
    script = script_of(up_to_date_capture)
    out = tmp_path / "again.invcap"
    lines: list[str] = []
    async with OutletSimulator(sim_config("A", "0.0.1", "0.1.2")) as sim:
        opts = SendOptions(Outlet("127.0.0.1", sim.tcp_port, sim.ws_port), record=str(out))
        result = await send_replay(script, opts, on_line=lines.append)
        assert sim.ota_history == []  # the destructive cb21 never reached the outlet
    assert result.differences == []
    assert [r.callback for r in result.skipped] == [21]
    assert [s.request.callback for s in result.sent] == [12, 20]
    assert any("skipped, destructive" in line for line in lines)
    # fresh packetIDs, answered under them, and the new session is a capture like any other
    again = script_of(out)
    assert [r.callback for r in again.requests] == [12, 20]
    assert all(r.replies and r.replies[0].echoes for r in again.requests)
    sent_ids = {s.packet_id for s in result.sent}
    assert sent_ids == {r.packet_id for r in again.requests}
    assert sent_ids.isdisjoint(r.packet_id for r in script.requests)


async def test_send_allowed_to_be_destructive_sends_the_update_request(
    up_to_date_capture: Path, tmp_path: Path
) -> None:
    script = script_of(up_to_date_capture)
    out = tmp_path / "kept.invcap"
    async with OutletSimulator(sim_config("A", "0.0.1", "0.1.2")) as sim:
        opts = SendOptions(
            Outlet("127.0.0.1", sim.tcp_port, sim.ws_port),
            allow_destructive=True,
            keep_packet_ids=True,
            record=str(out),
        )
        result = await send_replay(script, opts)
        assert "requested" in sim.ota_history and "refused" in sim.ota_history
    assert result.skipped == []
    assert result.differences == []  # refused now as then
    # --keep-packet-ids: the recorded requests go out byte for byte
    sent = script_of(out).requests
    assert [r.raw for r in sent] == [r.raw for r in script.requests]


async def test_send_shows_what_changed_on_the_outlet(up_to_date_capture: Path) -> None:
    script = script_of(up_to_date_capture)
    async with OutletSimulator(sim_config("A", "0.0.3", "0.1.2")) as sim:
        opts = SendOptions(Outlet("127.0.0.1", sim.tcp_port, sim.ws_port), transport="tcp")
        result = await send_replay(script, opts)
    assert result.differences == ['cb20 reply: IM.available_fw_rev: "0.0.1" -> "0.0.3"']


# ---------------------------------------------------------------------- command line


async def _cli(*args: str) -> tuple[int, str, str]:
    proc = await spawn("replay", *args)
    out, err = await asyncio.wait_for(proc.communicate(), WAIT)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_cli_send_exit_codes(up_to_date_capture: Path, tmp_path: Path) -> None:
    cap = str(up_to_date_capture)
    async with OutletSimulator(sim_config("A", "0.0.1", "0.1.2")) as sim:
        ports = ["--ws-port", str(sim.ws_port), "--tcp-port", str(sim.tcp_port)]
        code, out, err = await _cli("send", cap, "--outlet", "127.0.0.1", *ports, "--no-record")
        assert (code, err.count("Traceback")) == (0, 0), err
        assert "no differences in 2 request(s)" in out and "cb21 [1,0]" in out
        assert f"request(s) from {cap} to 127.0.0.1\n" in err  # the address, as typed
        port = sim.tcp_port
    async with OutletSimulator(sim_config("A", "0.0.3", "0.1.2")) as sim:
        ports = ["--ws-port", str(sim.ws_port)]
        rec = str(tmp_path / "diff.invcap")
        code, out, _ = await _cli("send", cap, "--outlet", "127.0.0.1", *ports, "--record", rec)
        assert code == 1
        assert 'cb20 reply: IM.available_fw_rev: "0.0.1" -> "0.0.3"' in out
        assert os.path.getsize(rec) > 0
    # the first simulator is gone: nothing listens on its port any more
    code, _, err = await _cli(
        "send",
        cap,
        "--outlet",
        "127.0.0.1",
        "--transport",
        "tcp",
        "--tcp-port",
        str(port),
        "--no-record",
    )
    assert code == 2 and "cannot reach the outlet" in err and "Traceback" not in err
    code, _, err = await _cli("send", str(tmp_path / "nope.invcap"), "--outlet", "127.0.0.1")
    assert code == 2 and "no such file" in err and "Traceback" not in err


async def _serve_cli(*args: str) -> tuple[asyncio.subprocess.Process, int]:
    serve = Command(await spawn("replay", "serve", *args, "--tcp-port", "0", "--no-ws"), WAIT)
    m = await serve.line_matching(r"listening: tcp 127\.0\.0\.1:(\d+)")
    return serve.proc, int(m.group(1))


async def test_cli_serve_answers_and_stops_on_ctrl_c_or_strict() -> None:
    trace = str(SCENARIOS / "revb_outlet_tcp.jsonl")
    proc, port = await _serve_cli(trace)
    got = await _tcp_exchange(port, [_req(456789, 20)], 1)
    assert got[0]["packetID"] == 456789
    proc.send_signal(signal.SIGINT)
    out, err = await asyncio.wait_for(proc.communicate(), WAIT)
    assert proc.returncode == 0 and "Traceback" not in err.decode()
    assert "stopped" in out.decode()

    proc, port = await _serve_cli(trace, "--strict")
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(json.dumps(_req(456789, 99)).encode() + b"\n")
    await writer.drain()
    out, err = await asyncio.wait_for(proc.communicate(), WAIT)
    assert await asyncio.wait_for(reader.read(), WAIT) == b""  # no PUBACK 0: it stopped
    writer.close()
    assert proc.returncode == 1
    assert "unmatched request" in err.decode() and "--strict" in err.decode()
