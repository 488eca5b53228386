"""`invisproxy demo --headless --rule ...`: the scripted app runs against the rules and
the verdict compares what it saw with the analysis' view of the app (both truths)."""

from __future__ import annotations

from pathlib import Path

from tests.integration.test_demo import run_demo

REFUSE = "cb:21 dir:app -> reply puback=0"
FAIL = "cb:23 arg.0:1 arg.1:1 -> set payload.callbackArgs.1=0"


def _said(stderr: str, start: str) -> str:
    lines = [line for line in stderr.splitlines() if line.startswith(start)]
    assert len(lines) == 1, stderr[-3000:]
    return lines[0]


def test_a_refusal_made_by_the_proxy_is_what_the_app_saw(tmp_path: Path) -> None:
    done = run_demo(tmp_path, "--no-record", "--rule", REFUSE)
    assert done.returncode == 0, done.stderr[-3000:]
    assert _said(done.stderr, "invisproxy demo: OK: ") == (
        "invisproxy demo: OK: the analysis agrees with the app: refused (the app saw a "
        f"refusal); the outlet never saw the request: the proxy answered it ({REFUSE})"
    )
    assert f"invisproxy demo: rule 1: {REFUSE}: matched 0, acted 0" in done.stderr
    assert f"invisproxy demo: rule 1: {REFUSE}: matched 1, acted 1" in done.stderr
    assert "invisproxy demo: app: refused: cb21 was answered with PUBACK 0" in done.stderr


def test_a_success_turned_failure_keeps_the_outlets_truth_beside_the_apps(
    tmp_path: Path,
) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text(
        f'[[rule]]\nmatch = "cb:23 arg.0:1 arg.1:1"\naction = "{FAIL.split(" -> ")[1]}"\n'
    )
    done = run_demo(tmp_path, "--rev", "A", "--no-record", "--rules", str(rules))
    assert done.returncode == 0, done.stderr[-3000:]
    assert _said(done.stderr, "invisproxy demo: OK: ") == (
        "invisproxy demo: OK: the analysis agrees with the app: failed (the app saw a "
        "failure); the outlet itself says 'succeeded'"
    )
    assert f"invisproxy demo: rule 1: {FAIL}: matched 1, acted 1 [from {rules}]" in done.stderr


def test_with_no_rule_the_verdict_reads_as_before(tmp_path: Path) -> None:
    done = run_demo(tmp_path, "--no-record")
    assert done.returncode == 0, done.stderr[-3000:]
    assert _said(done.stderr, "invisproxy demo: OK: ") == (
        "invisproxy demo: OK: the analysis agrees with the app: succeeded, "
        "firmware 0.0.1 → 0.0.2 verified"
    )
    assert "invisproxy demo: rule" not in done.stderr
