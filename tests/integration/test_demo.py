"""`invisproxy demo --headless`: simulator + relay + scripted app, end to end."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from proxy.core.analysis import analyze
from proxy.store.recording import load_events

INVISPROXY = Path(sys.executable).parent / "invisproxy"


def run_demo(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(INVISPROXY), "demo", "--headless", "--ota-seconds", "1", "--seed", "7", *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.parametrize("rev", ["A", "B"])
def test_demo_tells_the_whole_ota_story_and_records_it(tmp_path: Path, rev: str) -> None:
    capture = tmp_path / "demo.invcap"
    done = run_demo(tmp_path, "--rev", rev, "--record", str(capture))
    assert done.returncode == 0, done.stderr[-3000:]
    assert "OK: the analysis agrees with the app: succeeded" in done.stderr
    assert "SUCCEEDED" in done.stdout and "verified ✓" in done.stdout
    # the story as the timeline tells it
    relations = ["ota-progress", "ota-result", "ota-verify"]
    relations.append("ota-ack" if rev == "A" else "ota-sync")
    for relation in relations:
        assert f"↖ {relation} of #" in done.stdout, relation
    # the restart remark is printed, with its message or after it
    assert "ota-restart: the outlet closed connection" in done.stdout
    # the recording holds the same story
    analysis = analyze(load_events(capture).events)
    (session,) = analysis.sessions
    assert session.outcome == "succeeded" and session.verified is True
    assert session.fw_before == "0.0.1" and session.fw_after == "0.0.2"
    transports = {c.transport for c in analysis.connections.values()}
    assert transports == {"ws" if rev == "A" else "tcp"}


def test_demo_deco_update_keeps_the_connection(tmp_path: Path) -> None:
    done = run_demo(tmp_path, "--target", "deco", "--no-record")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "deco update" in done.stdout and "SUCCEEDED" in done.stdout
    assert not list(tmp_path.glob("captures/*"))


def test_demo_with_a_refusing_outlet_reports_refused(tmp_path: Path) -> None:
    done = run_demo(tmp_path, "--rev", "A", "--fault", "refuse", "--no-record")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "REFUSED" in done.stdout
    assert "OK: the analysis agrees with the app: refused" in done.stderr


def test_demo_rejects_a_bad_fault_in_one_line(tmp_path: Path) -> None:
    done = run_demo(tmp_path, "--fault", "explode")
    assert done.returncode == 2
    assert "argument --fault" in done.stderr and "Traceback" not in done.stderr


def _tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], capture_output=True, text=True, check=True).stdout


def _toast_words(screen: str) -> str:
    """The words of a wrapped notification, as a person reads them."""
    return " ".join(line.split("▌")[-1].strip() for line in screen.splitlines())


def _screen_with(session: str, *needles: str, timeout: float = 60.0) -> str:
    """Poll the terminal until every needle shows (the screen is painted in pieces)."""
    deadline = time.monotonic() + timeout
    screen = ""
    while time.monotonic() < deadline:
        screen = _tmux("capture-pane", "-p", "-J", "-t", session)
        seen = screen + "\n" + _toast_words(screen)
        if all(needle in seen for needle in needles):
            return screen
        time.sleep(0.2)  # polling a real terminal for a condition, with a deadline
    raise AssertionError(f"{needles!r} did not all appear; screen was:\n{screen}")


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_demo_in_the_tui_at_80x24_tells_the_story_and_quits(tmp_path: Path) -> None:
    """The README's main command, as a person runs it in a terminal."""
    session = f"demo-{uuid.uuid4().hex[:8]}"
    marker = tmp_path / "exit-code"
    command = (
        f"cd {tmp_path} && {INVISPROXY} demo --ota-seconds 1 --seed 3; "
        f"echo $? > {marker}; echo EXITED; sleep 30"
    )
    _tmux("new-session", "-d", "-s", session, "-x", "80", "-y", "24", command)
    try:
        _screen_with(session, "Demo finished", "analysis agrees", "verified")
        _tmux("send-keys", "-t", session, "q")
        _screen_with(session, "EXITED")
        assert marker.read_text().strip() == "0"
        (capture,) = (tmp_path / "captures").glob("demo-*.invcap")
        (session_found,) = analyze(load_events(capture).events).sessions
        assert session_found.outcome == "succeeded"
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
