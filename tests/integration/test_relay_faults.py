"""The relay when things go wrong: drops, restarts, refusals, crowds, kills."""

from __future__ import annotations

import asyncio
import os
import random
import re
import signal
import socket
import sys
from pathlib import Path
from typing import Any

import pytest
import websockets
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from proxy.core.events import Close, Data, Open
from proxy.store.capture import read_capture
from tests.integration import relay_support
from tests.integration.relay_support import WAIT, RelayFactory


async def _read_to_eof(reader: asyncio.StreamReader) -> bytes:
    """Everything until the relay closes; a reset counts as the end too."""
    got = bytearray()
    try:
        while data := await asyncio.wait_for(reader.read(65536), WAIT):
            got.extend(data)
    except ConnectionResetError:
        pass
    return bytes(got)


async def test_outlet_dropping_mid_object(make_relay: RelayFactory) -> None:
    half = b'{"sn":"11B27540076","packetID":221040,"PUBACK":1,"payload":{"callba'

    async def outlet_side(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readexactly(10)
        writer.write(half)
        await writer.drain()
        # returning closes the connection: FIN in the middle of the object

    outlet, log, relay = await relay_support.relay_to_outlet(make_relay, outlet_side)
    reader, writer = await asyncio.open_connection(*relay.tcp_address)
    writer.write(b'{"packetI')
    writer.write(b"D")
    assert await _read_to_eof(reader) == half
    writer.close()
    close = await log.wait_closed("c1")
    assert close.by == "outlet"
    assert log.stream("c1", "outlet") == half
    assert log.stream("c1", "app") == b'{"packetID'
    await outlet.stop()


@pytest.mark.parametrize("how", ["close", "abort"])
async def test_app_dropping_mid_object(make_relay: RelayFactory, how: str) -> None:
    outlet_got = bytearray()
    outlet_eof = asyncio.Event()

    async def outlet_side(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                outlet_got.extend(data)
        finally:
            outlet_eof.set()

    outlet, log, relay = await relay_support.relay_to_outlet(make_relay, outlet_side)
    _, writer = await asyncio.open_connection(*relay.tcp_address)
    writer.write(b'{"packetID":100001,"payload":{"callbackName":20}}\n{"packetID":1000')
    await writer.drain()
    await log.wait_for(
        lambda evs: sum(len(e.data) for e in evs if isinstance(e, Data)) == 66, "app bytes"
    )
    if how == "abort":
        writer.transport.abort()
    else:
        writer.close()
    await asyncio.wait_for(outlet_eof.wait(), WAIT)
    close = await log.wait_closed("c1")
    assert close.by == "app"
    assert bytes(outlet_got) == log.stream("c1", "app")
    assert outlet_got.endswith(b'{"packetID":1000')
    await outlet.stop()


async def test_outlet_restarting_during_traffic(make_relay: RelayFactory) -> None:
    outlet, log, relay = await relay_support.relay_to_outlet(make_relay, relay_support.echo)
    messages = relay_support.random_json_messages(random.Random(5), 400)

    reader, writer = await asyncio.open_connection(*relay.tcp_address)
    for m in messages[:200]:
        writer.write(m)
        assert await asyncio.wait_for(reader.readexactly(len(m)), WAIT) == m
    writer.write(b"".join(messages[200:]))  # in flight while the outlet goes down
    await outlet.stop()  # reboot: listener and connections gone at once
    echoed = b"".join(messages[:200]) + await _read_to_eof(reader)
    writer.close()
    close = await log.wait_closed("c1")
    assert close.by == "outlet"
    sent = b"".join(messages)
    assert log.stream("c1", "app") == sent[: len(log.stream("c1", "app"))]
    assert echoed == log.stream("c1", "outlet")

    # while it is down: the app is turned away, the failure is recorded
    reader2, writer2 = await asyncio.open_connection(*relay.tcp_address)
    assert await _read_to_eof(reader2) == b""
    writer2.close()
    down = await log.wait_closed("c2")
    assert down.by == "proxy" and (down.error or "").startswith("outlet unreachable:")

    await outlet.start()  # back, same port
    reader3, writer3 = await asyncio.open_connection(*relay.tcp_address)
    writer3.write(sent)
    assert await asyncio.wait_for(reader3.readexactly(len(sent)), WAIT) == sent
    writer3.close()
    await log.wait_closed("c3")
    assert log.stream("c3", "outlet") == sent
    await outlet.stop()


async def test_outlet_refusing_is_reported_and_the_next_connection_is_served(
    make_relay: RelayFactory,
) -> None:
    # bound but not listening: the kernel refuses connections to this port
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    log = relay_support.EventLog()
    relay = await make_relay(outlet_tcp_port=port, sinks=[log])

    reader, writer = await asyncio.open_connection(*relay.tcp_address)
    assert await _read_to_eof(reader) == b""
    writer.close()
    close = await log.wait_closed("c1")
    opened = log.of("c1")[0]
    assert isinstance(opened, Open) and opened.outlet == f"127.0.0.1:{port}"
    assert close.by == "proxy"
    assert close.error is not None and close.error.startswith("outlet unreachable:")
    assert "refused" in close.error.lower() or "connect call failed" in close.error.lower()

    async def closing_echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await relay_support.echo(reader, writer)
        writer.close()

    server = await asyncio.start_server(closing_echo, sock=sock)  # the outlet comes up
    try:
        reader, writer = await asyncio.open_connection(*relay.tcp_address)
        writer.write(b'{"ok":1}')
        assert await asyncio.wait_for(reader.readexactly(8), WAIT) == b'{"ok":1}'
        writer.close()
        assert (await log.wait_closed("c2")).by == "app"
    finally:
        server.close()
        await server.wait_closed()


async def test_websocket_outlet_unreachable_and_abrupt_drop(make_relay: RelayFactory) -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    log = relay_support.EventLog()
    relay = await make_relay(outlet_ws_port=port, sinks=[log])
    url = f"ws://127.0.0.1:{relay.ws_address[1]}/ws"
    with pytest.raises((InvalidHandshake, OSError, EOFError)):
        await websockets.connect(url, open_timeout=WAIT)
    close = await log.wait_closed("c1")
    opened = log.of("c1")[0]
    assert isinstance(opened, Open) and opened.transport == "ws"
    assert close.by == "proxy" and (close.error or "").startswith("outlet unreachable:")

    async def handler(ws: Any) -> None:
        await ws.recv()
        await ws.send('{"partial":')
        ws.transport.abort()  # power cut: no close frame

    sock.close()
    async with websockets.serve(handler, "127.0.0.1", port):
        async with websockets.connect(url) as ws:
            await ws.send("{}")
            assert await asyncio.wait_for(ws.recv(), WAIT) == '{"partial":'
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(ws.recv(), WAIT)
        close = await log.wait_closed("c2")
    assert close.by == "outlet" and close.error is not None and "1006" in close.error


async def test_fifty_apps_at_once(make_relay: RelayFactory) -> None:
    outlet, log, relay = await relay_support.relay_to_outlet(make_relay, relay_support.echo)

    async def app(i: int) -> tuple[str, bytes]:
        rng = random.Random(i)
        data = b"".join(relay_support.random_json_messages(rng, 30))
        reader, writer = await asyncio.open_connection(*relay.tcp_address)
        host, port = writer.get_extra_info("sockname")[:2]
        sender = asyncio.create_task(relay_support.write_in_random_chunks(writer, data, rng, 300))
        assert await asyncio.wait_for(reader.readexactly(len(data)), WAIT) == data
        await sender
        writer.close()
        return f"{host}:{port}", data

    results = dict(await asyncio.gather(*(app(i) for i in range(50))))
    opens = {e.app: e.conn for e in log.opens()}
    await log.wait_for(lambda evs: sum(isinstance(e, Close) for e in evs) == 50, "50 closes")
    assert len(opens) == 50 and set(opens) == set(results)
    assert sorted(opens.values(), key=lambda c: int(c[1:])) == [f"c{i}" for i in range(1, 51)]
    for addr, data in results.items():
        events = log.of(opens[addr])
        assert isinstance(events[0], Open) and isinstance(events[-1], Close)
        assert sum(isinstance(e, (Open, Close)) for e in events) == 2
        assert log.stream(opens[addr], "app") == data == log.stream(opens[addr], "outlet")
    await outlet.stop()


# ---------------------------------------------------------------------- the run command


class RunProcess:
    """`invisproxy run --headless` in a child process, stdout to a file."""

    def __init__(self, proc: asyncio.subprocess.Process, out: Path) -> None:
        self.proc = proc
        self.out = out
        self.stderr: list[str] = []

    @classmethod
    async def start(cls, tmp_path: Path, outlet_port: int, *extra: str) -> RunProcess:
        out = tmp_path / "stdout.txt"
        with out.open("wb") as fp:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "proxy", "run", "--outlet", "127.0.0.1",
                "--outlet-tcp-port", str(outlet_port), "--tcp-port", "0", "--no-ws",
                "--headless", *extra,
                stdout=fp, stderr=asyncio.subprocess.PIPE, cwd=tmp_path,
                env={**os.environ, "HOME": str(tmp_path)},  # mitmproxy's CA goes to ~/.mitmproxy
            )  # fmt: skip
        return cls(proc, out)

    async def line(self) -> str:
        assert self.proc.stderr is not None
        raw = await asyncio.wait_for(self.proc.stderr.readline(), WAIT)
        assert raw, f"run exited early: {self.stderr}"
        text = raw.decode().rstrip("\n")
        self.stderr.append(text)
        return text

    async def ready(self) -> tuple[str, int]:
        addr = None
        while "press Ctrl-C" not in (text := await self.line()):
            if m := re.search(r"relaying TCP (\S+):(\d+) ->", text):
                addr = (m.group(1), int(m.group(2)))
        assert addr is not None, self.stderr
        return addr

    async def finish(self) -> int:
        assert self.proc.stderr is not None
        rest = await asyncio.wait_for(self.proc.stderr.read(), WAIT)
        self.stderr += rest.decode().splitlines()
        return await asyncio.wait_for(self.proc.wait(), WAIT)

    async def interrupt(self) -> int:
        """Ctrl-C it (unless it already ended) and wait for its exit status."""
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGINT)
        return await self.finish()


async def test_sigkill_while_recording_loses_no_written_record(tmp_path: Path) -> None:
    outlet = relay_support.TcpOutlet(relay_support.echo)
    await outlet.start()
    capture = tmp_path / "live.invcap"
    run = await RunProcess.start(tmp_path, outlet.port, "--record", str(capture))
    try:
        addr = await run.ready()
        messages = relay_support.random_json_messages(random.Random(11), 3000)
        reader, writer = await asyncio.open_connection(*addr)
        sender = asyncio.create_task(
            relay_support.write_in_random_chunks(writer, b"".join(messages), random.Random(12))
        )
        received = await asyncio.wait_for(reader.readexactly(len(b"".join(messages[:1500]))), WAIT)
        run.proc.send_signal(signal.SIGKILL)  # mid-traffic, no chance to clean up
        assert await asyncio.wait_for(run.proc.wait(), WAIT) == -signal.SIGKILL
        sender.cancel()
        writer.transport.abort()
    finally:
        if run.proc.returncode is None:
            run.proc.kill()
            await run.proc.wait()
        await outlet.stop()

    loaded = read_capture(capture)
    events = list(loaded.events)
    app = b"".join(e.data for e in events if isinstance(e, Data) and e.side == "app")
    out = b"".join(e.data for e in events if isinstance(e, Data) and e.side == "outlet")
    sent = b"".join(messages)
    assert isinstance(events[0], Open)
    assert sent.startswith(app) and app.startswith(out)
    # every byte the app got back was recorded before it was forwarded
    assert out.startswith(received) and len(out) >= len(received)
    # one unbuffered write per record: a kill cannot leave half a record behind
    assert loaded.problems == []


async def test_sigint_shuts_down_cleanly_and_reports_the_capture(tmp_path: Path) -> None:
    outlet = relay_support.TcpOutlet(relay_support.echo)
    await outlet.start()
    run = await RunProcess.start(tmp_path, outlet.port)  # default capture path
    try:
        addr = await run.ready()
        capture_line = next(s for s in run.stderr if "recording to " in s)
        capture = tmp_path / capture_line.split("recording to ", 1)[1]
        assert re.fullmatch(r"captures/invis-\d{8}-\d{6}\.invcap", capture_line.split()[-1])
        reader, writer = await asyncio.open_connection(*addr)
        request = b'{"packetID":221040,"payload":{"callbackName":20}}\n'
        writer.write(request)
        assert await asyncio.wait_for(reader.readexactly(len(request)), WAIT) == request
        run.proc.send_signal(signal.SIGINT)
        assert await _read_to_eof(reader) == b""  # the live connection is closed by the proxy
        writer.close()
        assert await run.finish() == 0
    finally:
        if run.proc.returncode is None:
            run.proc.kill()
            await run.proc.wait()
        await outlet.stop()

    m = re.fullmatch(r"invisproxy run: capture (\S+): (\d+) events", run.stderr[-1])
    assert m is not None, run.stderr
    assert tmp_path / m.group(1) == capture
    loaded = read_capture(capture)
    events = list(loaded.events)
    assert not loaded.problems
    assert len(events) == int(m.group(2)) == 4
    assert isinstance(events[-1], Close) and events[-1].by == "proxy"
    timeline = run.out.read_text()
    assert "cb20" in timeline and "Request available updates" in timeline
    assert "── close by proxy" in timeline


async def test_run_reports_a_busy_port_in_one_line_and_keeps_no_capture(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "proxy", "run", "--outlet", "127.0.0.1", "--tcp-port",
            str(port), "--no-ws", "--headless", cwd=tmp_path,
            env={**os.environ, "HOME": str(tmp_path)},
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        _, err = await asyncio.wait_for(proc.communicate(), WAIT)
    assert proc.returncode == 2
    last = err.decode().strip().splitlines()[-1]
    assert last == (
        f"invisproxy run: error: cannot listen for TCP on 127.0.0.1:{port}: "
        "the port is already in use"
    )
    assert "Traceback" not in err.decode()
    assert list((tmp_path / "captures").glob("*")) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--outlet", "no-such-host.invalid"], "cannot resolve the outlet host"),
        (["--outlet", "127.0.0.1", "--no-tcp", "--no-ws"], "leave nothing to relay"),
    ],
)
async def test_run_rejects_bad_input_clearly(tmp_path: Path, args: list[str], message: str) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "proxy", "run", *args, "--headless", cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "HOME": str(tmp_path)},
    )  # fmt: skip
    _, err = await asyncio.wait_for(proc.communicate(), WAIT)
    assert proc.returncode == 2
    assert message in err.decode() and "Traceback" not in err.decode()
