"""The installed console script opens the TUI in a real terminal (tmux) and quits on q."""

from __future__ import annotations

import shutil
import subprocess
import time
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / ".venv" / "bin" / "invisproxy"
SAMPLE = ROOT / "tests" / "scenarios" / "revb_outlet_tcp.jsonl"

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")


def _tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], capture_output=True, text=True, check=True).stdout


def _wait_for(session: str, needle: str, timeout: float = 20.0) -> str:
    deadline = time.monotonic() + timeout
    screen = ""
    while time.monotonic() < deadline:
        screen = _tmux("capture-pane", "-p", "-t", session)
        if needle in screen:
            return screen
        time.sleep(0.1)  # polling the terminal for a condition, with a deadline
    raise AssertionError(f"{needle!r} did not appear; screen was:\n{screen}")


def test_view_starts_from_console_script_and_quits_with_q(tmp_path: Path) -> None:
    assert SCRIPT.exists(), "install the package: .venv/bin/invisproxy is missing"
    session = f"invis-{uuid.uuid4().hex[:8]}"
    marker = tmp_path / "exit-code"
    command = f"{SCRIPT} view {SAMPLE}; echo $? > {marker}; echo EXITED; sleep 30"
    _tmux("new-session", "-d", "-s", session, "-x", "80", "-y", "24", command)
    try:
        # the screen is painted in pieces: wait for each, not for one and assume the rest
        _wait_for(session, "Perform OTA update")
        _wait_for(session, "OTA updates")
        _wait_for(session, "13 msgs")
        _tmux("send-keys", "-t", session, "q")
        _wait_for(session, "EXITED")
        assert marker.read_text().strip() == "0"
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
