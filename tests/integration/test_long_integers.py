"""An integer longer than Python's int() converts (4300 digits) raised inside the
framer: analyze/export died with a traceback, the live analysis dropped the message,
``sim`` and ``replay serve`` dropped the connection. Through every real entry point it
is now an invalid frame with its reason, still forwarded, and what follows is read."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect

from proxy.cli.main import main
from proxy.core.analysis import Analysis, analyze
from proxy.core.events import Data
from proxy.core.framing import Framer
from proxy.net.addresses import Listener
from proxy.replay.script import build_script
from proxy.replay.serve import ReplayServer, ServeOptions
from proxy.sim.outlet import OutletSimulator, SimConfig
from proxy.store.recording import load_events
from tests.integration.relay_support import WAIT, RelayFactory, echo, relay_to_outlet

REPO = Path(__file__).resolve().parents[2]
DIGITS = 5000
BIG = b'{"packetID":123456,"payload":{"callbackName":20,"callbackArgs":[' + b"7" * DIGITS + b"]}}"
WHY = f"not decoded: an integer of {DIGITS} digits, more than the 4300 Python converts"


def request(pid: int, callback: int) -> bytes:
    return json.dumps({"packetID": pid, "payload": {"callbackName": callback}}).encode()


def write_trace(path: Path) -> None:
    lines: list[dict[str, Any]] = [
        {"t": 0.0, "conn": "c1", "event": "open", "transport": "tcp", "app": "a", "outlet": "o"},
        {"t": 0.1, "conn": "c1", "event": "data", "from": "app", "text": BIG.decode() + "\n"},
        {"t": 0.2, "conn": "c1", "event": "data", "from": "app", "text": '{"packetID":2345'},
        {"t": 0.3, "conn": "c1", "event": "data", "from": "app", "text": '67,"payload":{'},
        {"t": 0.4, "conn": "c1", "event": "data", "from": "app", "text": '"callbackName":11}}\n'},
        {
            "t": 0.5,
            "conn": "c1",
            "event": "data",
            "from": "outlet",
            "text": '{"sn":"X","packetID":234567,"PUBACK":1}\n',
        },
        {"t": 0.6, "conn": "c1", "event": "close", "by": "app"},
    ]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))


def test_analyze_and_export_read_past_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trace = tmp_path / "big.jsonl"
    write_trace(trace)
    assert main(["analyze", str(trace), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    kinds = [(m["kind"], m["callback"]) for m in out["messages"]]
    assert kinds == [("invalid", None), ("request", 11), ("response", 11)]
    assert out["messages"][0]["annotations"] == [
        {"code": "invalid-json", "severity": "error", "text": WHY}
    ]
    assert main(["analyze", str(trace)]) == 0
    assert WHY in capsys.readouterr().out
    assert main(["export", str(trace), "--format", "jsonl"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["kind"] for r in rows] == ["invalid", "request", "response"]
    # The capture keeps the bytes: a round trip through import and export loses nothing.
    cap = tmp_path / "big.invcap"
    assert main(["import", str(trace), "-o", str(cap)]) == 0
    with load_events(cap) as src:
        events = list(src.events)
    assert b"".join(e.data for e in events if isinstance(e, Data))[: len(BIG)] == BIG


async def test_live_analysis_keeps_the_message_and_the_relay_forwards_it(
    make_relay: RelayFactory,
) -> None:
    analysis = Analysis()
    outlet, log, relay = await relay_to_outlet(make_relay, echo, analysis.feed)
    assert relay.tcp_address is not None
    reader, writer = await asyncio.open_connection(*relay.tcp_address)
    sent = BIG + b"\n" + request(234567, 11) + b"\n"
    writer.write(sent)
    await writer.drain()
    got = await asyncio.wait_for(reader.readexactly(len(sent)), WAIT)
    writer.close()
    await outlet.stop()
    assert got == sent  # the echo came back through the relay unchanged
    conn = log.opens()[0].conn
    await log.wait_for(lambda evs: len(log.stream(conn, "outlet")) == len(sent), "the echo")
    mine = [(m.side, m.kind, m.callback) for m in analysis.messages]
    assert mine[:2] == [("app", "invalid", None), ("app", "request", 11)]
    assert ("outlet", "invalid", None) in mine[2:]
    assert analysis.messages[0].annotations[0].text == WHY


@pytest.mark.parametrize("transport", ["tcp", "ws"])
async def test_sim_answers_after_it(transport: str) -> None:
    cfg = SimConfig(seed=3, sensor_interval=0)
    async with OutletSimulator(cfg) as sim:
        if transport == "tcp":
            reader, writer = await asyncio.open_connection("127.0.0.1", sim.tcp_port)
            writer.write(BIG + b"\n" + request(234567, 20) + b"\n")
            await writer.drain()
            framer = Framer()
            replies: list[Any] = []
            async with asyncio.timeout(WAIT):
                while not any(r.get("packetID") == 234567 for r in replies):
                    chunk = await reader.read(65536)
                    assert chunk, "the simulator dropped the connection"
                    replies += [f.value for f in framer.feed(Data(0.0, "c", "outlet", chunk))]
            writer.close()
        else:
            async with connect(sim.ws_url, ping_interval=None) as ws:
                await ws.send(BIG.decode())
                await ws.send(request(234567, 20).decode())
                async with asyncio.timeout(WAIT):
                    reply = json.loads(await ws.recv())
                    while reply.get("packetID") != 234567:
                        reply = json.loads(await ws.recv())
                replies = [reply]
    (reply,) = [r for r in replies if r.get("packetID") == 234567]
    assert reply["payload"]["callbackName"] == 20


async def test_replay_serve_answers_after_it() -> None:
    with load_events(REPO / "tests/scenarios/revb_outlet_tcp.jsonl") as src:
        script = build_script(analyze(src.events))
    async with ReplayServer(script, ServeOptions(Listener(tcp_port=0, ws_port=None))) as srv:
        assert srv.tcp_port is not None
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.tcp_port)
        writer.write(BIG + b"\n" + request(234567, 20) + b"\n")
        await writer.drain()
        replies: list[Any] = []
        async with asyncio.timeout(WAIT):
            while not any(r.get("packetID") == 234567 for r in replies):
                line = await reader.readline()
                assert line, "replay serve dropped the connection"
                replies.append(json.loads(line))
        writer.close()
    # The long integer is answered as any unreadable request is (PUBACK 0), then the
    # request after it gets its recorded reply.
    assert replies[0] == {"sn": "11B27540076", "PUBACK": 0}
    assert replies[-1]["payload"]["callbackName"] == 20
