"""Each documented rule, live: the scripted app and the simulator through the proxy.

For every rule of the README's table: what the app experienced, what the capture holds
(the intervention marks, the original of a changed message, the proxy's own answer) and
what ``analyze --json`` says. Real sockets on 127.0.0.1, the real simulator, a real
capture file; the ``run`` command itself once, as a child process.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from proxy.cli.main import main
from proxy.core.events import Data, Event
from proxy.core.rules import RuleSet, combine
from proxy.mitm.live import LiveProxy
from proxy.sim.outlet import OutletSimulator, SimConfig
from proxy.sim.scripted_app import AppResult, ScriptedApp
from proxy.sim.state import Firmware
from proxy.store.capture import read_capture
from tests.integration.test_relay_faults import RunProcess

FW = Firmware()

REFUSE = "cb:21 dir:app -> reply puback=0"
LOSE_SYNC = "cb:21 dir:outlet -> drop"
STOP_AT_30 = "cb:22 arg.1:40-100 -> drop"
FAIL = "cb:23 arg.0:1 arg.1:1 -> set payload.callbackArgs.1=0"
DELAY = "cb:22 -> delay 5"
CLOSE = "cb:22 arg.1:50-100 -> close once"


def _config(revision: str, ota_seconds: float = 1.5) -> SimConfig:
    return SimConfig(
        revision=revision,  # type: ignore[arg-type]
        ota_seconds=ota_seconds,
        reboot_seconds=0.3,
        restart_seconds=0.2,
        sensor_interval=60.0,
        seed=3,
        progress_step=10,
        tcp_merge=0.3,
        tcp_split=0.2,
    )


@dataclass
class Run:
    result: AppResult
    lines: list[str]
    events: list[Event]
    doc: dict[str, Any]
    sim_log: list[str]
    sim_ota_history: list[str]
    rules: RuleSet

    def marked(self, action: str) -> list[Data]:
        return [
            e
            for e in self.events
            if isinstance(e, Data)
            and e.intervention is not None
            and e.intervention.action == action
        ]

    def ota(self) -> dict[str, Any]:
        assert len(self.doc["ota"]) == 1, self.doc["ota"]
        session: dict[str, Any] = self.doc["ota"][0]
        return session

    def message(self, id: int) -> dict[str, Any]:
        msg: dict[str, Any] = self.doc["messages"][id]
        return msg


async def _through_proxy(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    rules: Sequence[str],
    revision: str = "B",
    ota_seconds: float = 1.5,
) -> Run:
    ruleset = RuleSet(combine(rules))
    tmp_path.mkdir(parents=True, exist_ok=True)
    capture = tmp_path / "rules.invcap"
    sim_log: list[str] = []
    sim = OutletSimulator(_config(revision, ota_seconds), on_event=sim_log.append)
    await sim.start()
    live = LiveProxy(
        "127.0.0.1",
        lambda event: None,
        outlet_tcp_port=sim.tcp_port,
        outlet_ws_port=sim.ws_port,
        tcp_port=0,
        ws_port=0,
        record=capture,
        rules=ruleset,
    )
    lines: list[str] = []
    try:
        await live.start()
        where: dict[str, Any]
        if revision == "B":
            assert live.tcp_address is not None
            where = {"tcp_port": live.tcp_address[1]}
        else:
            assert live.ws_address is not None
            host, port = live.ws_address
            where = {"ws_url": f"ws://{host}:{port}/ws"}
        app = ScriptedApp(
            "127.0.0.1", timeout=60.0, stall_timeout=30.0, poll_interval=0.2, seed=4,
            on_line=lines.append, **where,
        )  # fmt: skip
        result = await app.run()
    finally:
        await live.stop()
        await sim.stop()
    events = list(read_capture(capture).events)
    capsys.readouterr()
    assert main(["analyze", str(capture), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    return Run(result, lines, events, doc, sim_log, list(sim.ota_history), ruleset)


def _payload(data: bytes) -> Any:
    return json.loads(data)


# ---------------------------------------------------------------- refused by the proxy


@pytest.mark.parametrize("revision", ["B", "A"])
async def test_reply_puback_0_refuses_the_update_before_it_reaches_the_outlet(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], revision: str
) -> None:
    run = await _through_proxy(tmp_path, capsys, [REFUSE], revision)
    assert run.result.outcome == "refused", run.result.reason
    pid = run.result.request_packet_id
    # the outlet never saw cb21: no update started there, nobody restarted
    assert run.sim_ota_history == [], run.sim_ota_history
    assert not any("OTA" in line or "dropping" in line for line in run.sim_log), run.sim_log
    (asked,) = run.marked("reply")[:1]
    assert asked.side == "app" and not asked.injected
    assert _payload(asked.data)["payload"]["callbackName"] == 21
    answers = [e for e in run.marked("reply") if e.injected]
    assert len(answers) == 1 and answers[0].side == "outlet"
    answer = _payload(answers[0].data)
    assert answer["packetID"] == pid and answer["PUBACK"] == 0
    assert answer["sn"] == _config(revision).serial_number()  # the outlet's, as last seen
    assert answers[0].intervention is not None
    assert answers[0].intervention.by == "rule" and answers[0].intervention.rule == REFUSE
    assert run.rules.stats() == [(f"rule 1: {REFUSE}", True, 1, 1)]
    session = run.ota()
    assert session["outcome"] == "refused"
    request = run.message(session["request"])
    assert request["intervention"]["action"] == "reply"
    assert request["intervention"]["rule"] == REFUSE


async def test_the_analysis_says_the_app_saw_a_refusal_the_proxy_made(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = await _through_proxy(tmp_path, capsys, [REFUSE])
    session = run.ota()
    assert session["app_outcome"] == "refused"
    assert "the proxy" in session["app_reason"]


# ---------------------------------------------------------------- the revB status lost


async def test_drop_of_the_sync_status_leaves_the_update_to_finish_without_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = await _through_proxy(tmp_path, capsys, [LOSE_SYNC])
    assert run.result.outcome == "succeeded", run.result.reason
    assert run.result.fw_after == FW.im_available
    pid = run.result.request_packet_id
    # the app never received the synchronous cb21, the outlet did send it
    assert not [m for m in run.result.messages if m.callback == 21]
    # (a reply still in transit when the run stops is recorded as not forwarded, by no rule)
    (dropped,) = [e for e in run.marked("drop") if e.intervention and e.intervention.rule]
    assert dropped.side == "outlet" and _payload(dropped.data)["packetID"] == pid
    assert _payload(dropped.data)["payload"]["callbackArgs"] == [1, 1]
    session = run.ota()
    assert session["outcome"] == "succeeded"
    marks = [m["intervention"] for m in run.doc["messages"] if m["intervention"]]
    assert [(m["action"], m["rule"]) for m in marks if m["rule"]] == [("drop", LOSE_SYNC)]


# ---------------------------------------------------------------- progress stops at 30 %


async def test_dropping_progress_from_40_percent_stops_it_at_30_for_the_app(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = await _through_proxy(tmp_path, capsys, [STOP_AT_30])
    seen = run.result.progress
    assert seen and max(percent for _, percent in seen) == 30, seen
    assert {device for device, _ in seen} == {1, 3}  # both phases, each stopped at 30
    assert run.result.outcome == "succeeded", run.result.reason
    dropped = [e for e in run.marked("drop") if e.intervention and e.intervention.rule]
    percents = sorted({_payload(e.data)["payload"]["callbackArgs"][1] for e in dropped})
    assert percents == [40, 50, 60, 70, 80, 90, 100]
    assert all(e.intervention and e.intervention.rule == STOP_AT_30 for e in dropped)
    session = run.ota()
    assert max(p for _, _, p in session["progress"]) == 100  # what the outlet reported
    by_rule = [m["id"] for m in run.doc["messages"] if (m["intervention"] or {}).get("rule")]
    assert len(by_rule) == len(dropped)


# ---------------------------------------------------------------- success becomes failure


async def test_set_turns_the_final_success_into_a_failure_for_the_app(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = await _through_proxy(tmp_path, capsys, [FAIL])
    assert run.result.outcome == "failed", run.result.reason
    assert "cb23 [1, 0]" in run.result.reason
    (changed,) = run.marked("set")
    assert changed.original is not None
    assert _payload(changed.original)["payload"]["callbackArgs"] == [1, 1]
    assert _payload(changed.data)["payload"]["callbackArgs"] == [1, 0]
    message = next(m for m in run.doc["messages"] if m["intervention"])
    assert message["intervention"]["action"] == "set" and message["callback"] == 23


async def test_the_analysis_keeps_both_truths_of_a_success_turned_failure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = await _through_proxy(tmp_path, capsys, [FAIL])
    session = run.ota()
    assert (session["outcome"], session["app_outcome"]) == ("succeeded", "failed")
    assert FAIL in session["app_reason"]


# ---------------------------------------------------------------- delayed progress


async def test_delayed_progress_arrives_late_and_the_update_still_finishes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # a download longer than the delay: the first messages wait their whole 5 s; the
    # last ones are let go early, when the outlet closes the connection to reboot
    run = await _through_proxy(tmp_path, capsys, [DELAY], ota_seconds=6.0)
    assert run.result.outcome == "succeeded", run.result.reason
    assert run.result.progress[-1] == (1, 100)
    marked = run.marked("delay")
    delayed = [e for e in marked if e.intervention and e.intervention.rule == DELAY]
    assert delayed and all(_payload(e.data)["payload"]["callbackName"] == 22 for e in delayed)
    # what queued behind a delayed push waited too, and says so (no rule acted on it)
    for e in marked:
        if e not in delayed:
            assert e.intervention is not None and e.intervention.rule is None
            assert e.intervention.why in (
                "waited behind a message that was delayed or held",
                "sent early: the sender closed its side",
            )
    # each waited its 5 s, or was let go early when the outlet closed its side (reboot)
    for e in delayed:
        assert e.intervention is not None and e.intervention.held is not None
        early = (e.intervention.why or "").startswith("sent early")
        assert early or e.intervention.held >= 5.0 - 0.05, e.intervention
    assert any(
        e.intervention and e.intervention.held and e.intervention.held >= 4.95 for e in delayed
    )
    assert run.ota()["outcome"] == "succeeded"
    held = [m["intervention"]["held"] for m in run.doc["messages"] if m["intervention"]]
    assert len(held) == len(marked) and all(h is not None for h in held)


async def test_delayed_progress_over_websocket_still_ends_in_a_verified_success(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """revA reboots before the delayed messages are due: the proxy sends them early, just
    before the close, so the app still sees the progress and the result."""
    run = await _through_proxy(tmp_path, capsys, [DELAY], revision="A")
    assert run.result.outcome == "succeeded", (run.result.reason, run.lines)
    assert run.result.fw_after == FW.im_available
    assert run.result.progress  # the delayed pushes reached the app, early
    delayed = [e for e in run.events if isinstance(e, Data) and e.intervention]
    assert delayed and all(e.side == "outlet" for e in delayed)
    early = [
        e
        for e in delayed
        if e.intervention and e.intervention.why and "early" in e.intervention.why
    ]
    assert early, [e.intervention for e in delayed]  # the ones still owed at the reboot
    for e in early:
        assert e.intervention is not None and e.intervention.action in ("delay", "hold")
        assert e.intervention.why == "sent early: the sender closed its side"
    assert run.ota()["outcome"] == "succeeded"  # what the outlet did


# ---------------------------------------------------------------- the connection closed


async def test_close_once_mid_download_makes_the_app_reconnect_and_finish(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clean = await _through_proxy(tmp_path / "clean", capsys, [])
    run = await _through_proxy(tmp_path / "closed", capsys, [CLOSE])
    assert run.result.outcome == "succeeded", run.result.reason
    assert run.result.reconnects == clean.result.reconnects + 1
    assert any("connection lost" in line for line in run.lines)
    (closed,) = run.marked("close")
    assert _payload(closed.data)["payload"]["callbackArgs"][1] >= 50
    assert closed.intervention is not None and closed.intervention.rule == CLOSE
    assert run.rules.rules[0].applied == 1 and run.rules.rules[0].matched > 1
    assert run.ota()["outcome"] == "succeeded"


# ---------------------------------------------------------------- the command itself


async def test_run_applies_command_line_and_file_rules_and_lists_their_counts(
    tmp_path: Path,
) -> None:
    rules_file = tmp_path / "rules.toml"
    rules_file.write_text('[[rule]]\nmatch = "cb:22 arg.1:40-100"\naction = "drop"\n')
    capture = tmp_path / "run.invcap"
    async with OutletSimulator(_config("B")) as sim:
        run = await RunProcess.start(
            tmp_path, sim.tcp_port, "--record", str(capture),
            "--rule", FAIL, "--rules", str(rules_file),
        )  # fmt: skip
        try:
            host, port = await run.ready()
            app = ScriptedApp(host, tcp_port=port, timeout=60.0, poll_interval=0.2, seed=4)
            result = await app.run()
        finally:
            code = await run.interrupt()
    assert code == 0, run.stderr
    assert result.outcome == "failed", result.reason
    assert max(p for _, p in result.progress) == 30
    assert f"invisproxy run: rule 1: {FAIL}: matched 0, acted 0" in run.stderr
    assert (
        f"invisproxy run: rule 2: {STOP_AT_30}: matched 0, acted 0 [from {rules_file}]"
        in run.stderr
    )
    assert any(
        line.startswith(f"invisproxy run: rule 2: {STOP_AT_30}: matched 14, acted 14")
        for line in run.stderr
    ), run.stderr
    assert f"invisproxy run: rule 1: {FAIL}: matched 1, acted 1" in run.stderr
    events = list(read_capture(capture).events)
    marks = [e.intervention.action for e in events if isinstance(e, Data) and e.intervention]
    assert marks.count("set") == 1 and marks.count("drop") == 14


async def test_run_reloads_the_rules_file_and_keeps_the_rules_on_a_broken_edit(
    tmp_path: Path,
) -> None:
    rules_file = tmp_path / "rules.toml"
    rules_file.write_text('[[rule]]\nmatch = "cb:21 dir:app"\naction = "reply puback=0"\n')
    async with OutletSimulator(_config("B")) as sim:
        run = await RunProcess.start(
            tmp_path, sim.tcp_port, "--no-record", "--rules", str(rules_file)
        )
        try:
            host, port = await run.ready()
            assert (
                f"invisproxy run: watching {rules_file}: edits take effect when saved" in run.stderr
            )
            rules_file.write_text('[[rule]]\nmatch = "cb:21 dir:app"\naction = "reply puback"\n')
            while "not reloaded" not in (line := await run.line()):
                pass
            assert line == (
                f"invisproxy run: warning: rules file {rules_file} not reloaded: [[rule]] 1: "
                "rule 'cb:21 dir:app -> reply puback': reply needs FIELD=VALUE... "
                "(reply puback=0) at column 24; still using the 1 rule in use"
            )
            # the rule in use still acts
            refused = await ScriptedApp(host, tcp_port=port, timeout=30.0, seed=1).run()
            rules_file.write_text("")
            while "reloaded:" not in (line := await run.line()):
                pass
            assert line == (
                f"invisproxy run: rules file {rules_file} reloaded: 0 rules from it, 0 in all"
            )
            updated = await ScriptedApp(host, tcp_port=port, timeout=30.0, seed=2).run()
        finally:
            code = await run.interrupt()
    assert code == 0, run.stderr
    assert refused.outcome == "refused", refused.reason
    assert updated.outcome == "succeeded", updated.reason
