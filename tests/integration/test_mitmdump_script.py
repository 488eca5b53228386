"""The addon inside stock mitmproxy: `mitmdump -s proxy/addon.py` records and decodes."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import sys
from pathlib import Path
from typing import Any

import pytest
import websockets

from proxy.core.events import Close, Data, Open
from proxy.store.capture import read_capture
from tests.integration.relay_support import WAIT, TcpOutlet, echo

ADDON = Path(__file__).resolve().parents[2] / "proxy" / "addon.py"
MITMDUMP = shutil.which("mitmdump", path=str(Path(sys.executable).parent)) or shutil.which(
    "mitmdump"
)

pytestmark = pytest.mark.skipif(MITMDUMP is None, reason="mitmdump is not installed")

REQUEST = b'{"packetID":221040,"payload":{"callbackName":20}}\n'


async def _mitmdump(tmp_path: Path, mode: str, capture: Path) -> tuple[Any, int, list[str]]:
    """Start mitmdump with our script; return it, its listen port and its output so far."""
    assert MITMDUMP is not None
    proc = await asyncio.create_subprocess_exec(
        MITMDUMP, "-s", str(ADDON), "--mode", mode,
        "--set", f"invis_capture={capture}", "--set", f"confdir={tmp_path / 'conf'}",
        "--flow-detail", "3",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, cwd=tmp_path,
        env={**os.environ, "HOME": str(tmp_path)},
    )  # fmt: skip
    assert proc.stdout is not None
    lines: list[str] = []
    while True:
        raw = await asyncio.wait_for(proc.stdout.readline(), WAIT)
        assert raw, f"mitmdump exited: {lines}"
        lines.append(raw.decode(errors="replace").rstrip())
        assert "error in script" not in lines[-1], lines
        if m := re.search(r"listening at 127\.0\.0\.1:(\d+)", lines[-1]):
            return proc, int(m.group(1)), lines


async def _stop(proc: Any, lines: list[str]) -> str:
    proc.send_signal(signal.SIGTERM)
    rest, _ = await asyncio.wait_for(proc.communicate(), WAIT)
    return "\n".join(lines) + "\n" + bytes(rest).decode(errors="replace")


async def test_mitmdump_tcp_records_a_capture_and_shows_decoded_messages(tmp_path: Path) -> None:
    outlet = TcpOutlet(echo)
    await outlet.start()
    capture = tmp_path / "dump.invcap"
    proc, port, lines = await _mitmdump(
        tmp_path, f"reverse:tcp://127.0.0.1:{outlet.port}@127.0.0.1:0", capture
    )
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(REQUEST[:20])
        await writer.drain()
        writer.write(REQUEST[20:])
        assert await asyncio.wait_for(reader.readexactly(len(REQUEST)), WAIT) == REQUEST
        writer.write_eof()  # the proxy closes toward the app once the outlet has closed too
        assert await asyncio.wait_for(reader.read(), WAIT) == b""
        writer.close()
    finally:
        output = await _stop(proc, lines)
        await outlet.stop()

    assert "invisproxy: recording to" in output
    assert "# cb20 Request available updates" in output  # the InvisOutlet contentview
    loaded = read_capture(capture)
    events = list(loaded.events)
    assert loaded.problems == []
    assert loaded.meta["source"] == "mitmproxy"
    assert isinstance(events[0], Open) and events[0].transport == "tcp"
    assert events[0].outlet == f"127.0.0.1:{outlet.port}"
    data = [e for e in events if isinstance(e, Data)]
    assert b"".join(d.data for d in data if d.side == "app") == REQUEST
    assert b"".join(d.data for d in data if d.side == "outlet") == REQUEST
    assert isinstance(events[-1], Close) and events[-1].by == "app"


async def test_mitmdump_websocket_records_messages_with_their_type(tmp_path: Path) -> None:
    async def handler(ws: Any) -> None:
        async for m in ws:
            await ws.send(m)

    capture = tmp_path / "ws.invcap"
    async with websockets.serve(handler, "127.0.0.1", 0) as server:
        outlet_port = server.sockets[0].getsockname()[1]
        proc, port, lines = await _mitmdump(
            tmp_path, f"reverse:http://127.0.0.1:{outlet_port}@127.0.0.1:0", capture
        )
        try:
            async with websockets.connect(f"ws://127.0.0.1:{port}/ws") as ws:
                await ws.send(REQUEST.decode())
                assert await asyncio.wait_for(ws.recv(), WAIT) == REQUEST.decode()
                await ws.send(b"\x00\xff")
                assert await asyncio.wait_for(ws.recv(), WAIT) == b"\x00\xff"
        finally:
            output = await _stop(proc, lines)

    assert "# cb20 Request available updates" in output
    events = list(read_capture(capture).events)
    assert isinstance(events[0], Open) and events[0].transport == "ws"
    data = [(e.side, e.data, e.text) for e in events if isinstance(e, Data)]
    assert data == [
        ("app", REQUEST, True),
        ("outlet", REQUEST, True),
        ("app", b"\x00\xff", False),
        ("outlet", b"\x00\xff", False),
    ]
    assert isinstance(events[-1], Close) and events[-1].by == "app"
