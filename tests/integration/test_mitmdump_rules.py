"""Rules in stock mitmproxy: ``mitmdump -s proxy/addon.py --set invis_rules=FILE``.

Real mitmdump in front of the real simulator, the scripted app through it; the rules
file is edited while it runs and the test waits for mitmdump's own log lines.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
from pathlib import Path
from typing import Any

import pytest

from proxy.core.events import Data
from proxy.sim.outlet import OutletSimulator, SimConfig
from proxy.sim.scripted_app import ScriptedApp
from proxy.store.capture import read_capture
from tests.integration.relay_support import WAIT
from tests.integration.test_mitmdump_script import ADDON, MITMDUMP

pytestmark = pytest.mark.skipif(MITMDUMP is None, reason="mitmdump is not installed")

REFUSE = '[[rule]]\nmatch = "cb:21 dir:app"\naction = "reply puback=0"\n'
FAST = SimConfig(
    revision="B", ota_seconds=1.0, reboot_seconds=0.3, restart_seconds=0.2,
    sensor_interval=60.0, seed=3,
)  # fmt: skip


class Dump:
    """A running mitmdump whose merged output the test reads line by line."""

    def __init__(self, proc: Any) -> None:
        self.proc = proc
        self.lines: list[str] = []

    @classmethod
    async def start(cls, tmp_path: Path, outlet_port: int, *options: str) -> Dump:
        assert MITMDUMP is not None
        settings = [item for option in options for item in ("--set", option)]
        proc = await asyncio.create_subprocess_exec(
            MITMDUMP, "-s", str(ADDON),
            "--mode", f"reverse:tcp://127.0.0.1:{outlet_port}@127.0.0.1:0",
            "--set", f"confdir={tmp_path / 'conf'}", *settings,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, cwd=tmp_path,
            env={**os.environ, "HOME": str(tmp_path)},
        )  # fmt: skip
        return cls(proc)

    async def line_matching(self, pattern: str) -> re.Match[str]:
        assert self.proc.stdout is not None
        async with asyncio.timeout(WAIT):
            while True:
                raw = await self.proc.stdout.readline()
                assert raw, f"mitmdump exited: {self.lines}"
                self.lines.append(raw.decode(errors="replace").rstrip())
                if m := re.search(pattern, self.lines[-1]):
                    return m

    async def port(self) -> int:
        return int((await self.line_matching(r"listening at 127\.0\.0\.1:(\d+)")).group(1))

    async def stop(self) -> str:
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
        rest, _ = await asyncio.wait_for(self.proc.communicate(), WAIT)
        return "\n".join(self.lines) + "\n" + bytes(rest).decode(errors="replace")


async def test_invis_rules_refuses_the_update_and_a_reload_takes_effect(tmp_path: Path) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text(REFUSE)
    capture = tmp_path / "dump.invcap"
    async with OutletSimulator(FAST) as sim:
        dump = await Dump.start(
            tmp_path, sim.tcp_port, f"invis_rules={rules}", f"invis_capture={capture}"
        )
        try:
            port = await dump.port()
            first = await ScriptedApp("127.0.0.1", tcp_port=port, timeout=30.0, seed=1).run()
            assert first.outcome == "refused", first.reason
            assert sim.ota_history == []  # the outlet never saw the request

            rules.write_text(REFUSE + 'oops = "not a rule"\n')
            await dump.line_matching(
                r"rules file .* not reloaded: \[\[rule\]\] 1: unknown key 'oops'.*"
                r"still using the 1 rule in use"
            )
            rules.write_text("# no rules: let everything through\n")
            await dump.line_matching(r"rules file .* reloaded: 0 rules from it")
            second = await ScriptedApp("127.0.0.1", tcp_port=port, timeout=30.0, seed=2).run()
        finally:
            output = await dump.stop()
    assert second.outcome == "succeeded", (second.reason, output)
    events = list(read_capture(capture).events)
    marks = [
        (e.side, e.injected, e.intervention.action, e.intervention.rule)
        for e in events
        if isinstance(e, Data) and e.intervention is not None
    ]
    rule = "cb:21 dir:app -> reply puback=0"
    assert marks == [("app", False, "reply", rule), ("outlet", True, "reply", rule)]


async def test_a_bad_rules_file_at_start_is_refused_with_the_column(tmp_path: Path) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text('[[rule]]\nmatch = "cb:21"\naction = "explode"\n')
    async with OutletSimulator(FAST) as sim:
        dump = await Dump.start(tmp_path, sim.tcp_port, f"invis_rules={rules}")
        try:
            await dump.line_matching(r"unknown action 'explode' at column 10")
            code = await asyncio.wait_for(dump.proc.wait(), WAIT)  # it stops by itself
        finally:
            output = await dump.stop()
    assert code == 2  # as run and demo exit on a bad rule
    assert f"{rules}, [[rule]] 1: rule 'cb:21 -> explode': unknown action 'explode'" in output
    assert "actions: drop, delay SECONDS" in output
    assert "Traceback" not in output
