"""``replay send`` and duplicate keys: a request whose duplicates hide a destructive
callback was sent as the harmless one Python's json keeps (cb21 and cb5 went out as
"cb12"); the outlet's parser may keep the other. It is skipped unless allowed."""

from __future__ import annotations

import json
from pathlib import Path

from proxy.core.analysis import analyze
from proxy.net.addresses import Outlet
from proxy.replay.script import build_script
from proxy.replay.send import SendOptions, send_replay
from proxy.sim.outlet import OutletSimulator, SimConfig
from proxy.store.recording import load_events

HIDES_21 = (
    '{"packetID":123456,"payload":{"callbackName":21,"callbackArgs":[1,0]},'
    '"payload":{"callbackName":12}}'
)
HIDES_5 = '{"packetID":234567,"payload":{"callbackName":5,"callbackName":12}}'
PLAIN = '{"packetID":345678,"payload":{"callbackName":12}}'


def capture(tmp_path: Path) -> Path:
    path = tmp_path / "dups.jsonl"
    lines = [
        {"t": 0.0, "conn": "c1", "event": "open", "transport": "tcp", "app": "a", "outlet": "o"}
    ]
    for i, text in enumerate((HIDES_21, HIDES_5, PLAIN)):
        lines.append(
            {"t": 0.1 + i / 100, "conn": "c1", "event": "data", "from": "app", "text": text + "\n"}
        )
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


async def test_send_skips_what_duplicates_hide_unless_allowed(tmp_path: Path) -> None:
    with load_events(capture(tmp_path)) as src:
        script = build_script(analyze(src.events))
    assert [r.callback for r in script.requests] == [12, 12, 12]  # as shown: the last wins
    cfg = SimConfig(seed=3, sensor_interval=0)
    async with OutletSimulator(cfg) as sim:
        lines: list[str] = []
        opts = SendOptions(Outlet("127.0.0.1", sim.tcp_port, sim.ws_port), timeout=0.5)
        result = await send_replay(script, opts, on_line=lines.append)
        assert [r.raw.strip() for r in result.skipped] == [HIDES_21.encode(), HIDES_5.encode()]
        assert [s.request.raw.strip() for s in result.sent] == [PLAIN.encode()]
        assert lines[0].startswith("[1/3] cb12 (Get device information): ")
        assert lines[0].endswith(
            "skipped, destructive: its duplicate keys hide cb21 (Perform OTA update), "
            "which the outlet may act on (--allow-destructive sends it)"
        )
        assert "skipped, destructive: its duplicate keys hide cb5 (" in lines[1]

        opts.allow_destructive = True
        result = await send_replay(script, opts)
        assert result.skipped == []
        assert len(result.sent) == 3
