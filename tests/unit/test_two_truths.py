"""What the outlet did and what the app saw (DESIGN 4.4 end, issue 10 item 5).

The scenario traces ``rule_*`` are what the relay records under the rules of DESIGN 4.5
(built by tests/scenarios/build_traces.py with its ``intervene`` step).
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Any

import pytest

from proxy.cli.main import main
from proxy.core.analysis import Analysis, analyze
from proxy.core.analysis.appview import app_bytes
from proxy.core.events import Data, Event, Intervention, Open, Side
from proxy.core.model import Message
from proxy.core.report import summary, timeline
from proxy.core.retention import BoundedAnalysis
from proxy.mitm.live import HeadlessPrinter
from proxy.store.recording import load_events

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"
REFUSE = "cb:21 dir:app -> reply puback=0"
SET = "cb:23 arg.0:1 arg.1:1 -> set payload.callbackArgs.1=0"


def events_of(name: str) -> list[Event]:
    return list(load_events(SCENARIOS / f"{name}.jsonl").events)


def doc_of(name: str) -> dict[str, Any]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["analyze", "--json", str(SCENARIOS / f"{name}.jsonl")]) == 0
    doc: dict[str, Any] = json.loads(out.getvalue())
    return doc


def test_a_refusal_made_by_a_reply_rule_is_refused_in_both_truths_and_named() -> None:
    (session,) = doc_of("rule_refusal")["ota"]
    assert session["outcome"] == "refused"
    assert session["app_outcome"] == "refused"
    assert REFUSE in session["app_reason"] and "answered by the proxy" in session["app_reason"]


def test_a_refusal_the_proxy_made_is_not_put_on_the_outlet() -> None:
    """The PUBACK 0 came from a reply rule: neither the reason nor the annotation says the
    outlet refused, and it is no evidence of the outlet's revision (revA answers cb21)."""
    doc = doc_of("rule_refusal")
    (session,) = doc["ota"]
    assert session["reason"].startswith("the proxy (not the outlet) answered")
    assert "revision A" not in session["reason"]
    (note,) = doc["messages"][3]["annotations"]
    assert note["text"].startswith("PUBACK 0: the proxy (not the outlet) refused this request")


def test_a_success_turned_into_a_failure_is_two_truths() -> None:
    (session,) = doc_of("rule_success_to_failure")["ota"]
    assert session["outcome"] == "succeeded" and "cb23 [1, 1]" in session["reason"]
    assert session["app_outcome"] == "failed" and "cb23 [1, 0]" in session["app_reason"]
    assert SET in session["app_reason"]


@pytest.mark.parametrize(
    ("name", "rule"),
    [
        ("rule_sync_lost", "cb:21 dir:outlet -> drop"),
        ("rule_progress_stops", "cb:22 arg.1:40-100 -> drop"),
    ],
)
def test_drops_give_what_the_app_could_conclude(name: str, rule: str) -> None:
    (session,) = doc_of(name)["ota"]
    assert session["app_outcome"] in ("succeeded", "failed", "refused", "stalled", "in-progress")
    assert rule in session["app_reason"] and "dropped" in session["app_reason"]


def test_the_app_saw_progress_stop_at_30_percent() -> None:
    analysis = analyze(events_of("rule_progress_stops"))
    seen = analysis.app_view()
    assert seen is not None
    (main_session,) = analysis.sessions
    (app_session,) = seen.analysis.sessions
    assert [p for _, _, p in main_session.progress] == [10, 30, 40, 70, 100]
    assert [p for _, _, p in app_session.progress] == [10, 30]


def test_every_message_carries_its_intervention_or_null() -> None:
    doc = doc_of("rule_success_to_failure")
    marks = [m["intervention"] for m in doc["messages"]]
    assert marks[:5] == [None] * 5
    assert marks[5] == {
        "action": "set",
        "by": "rule",
        "rule": SET,
        "held": None,
        "why": "changed by rule 1",
    }
    # the message is what the outlet said; args are decoded from what was received
    assert doc["messages"][5]["args"] == [1, 1]


def test_sessions_untouched_by_interventions_have_no_app_outcome() -> None:
    doc = doc_of("failed_main_phase")
    assert all("app_outcome" not in s and "app_reason" not in s for s in doc["ota"])
    assert all(m["intervention"] is None for m in doc["messages"])


def test_no_app_view_is_built_without_interventions() -> None:
    analysis = analyze(events_of("revb_outlet_tcp"))
    assert analysis.intervened == 0 and analysis.app_view() is None


def test_the_app_view_catches_up_only_with_what_was_added() -> None:
    events = events_of("rule_success_to_failure")
    analysis = Analysis()
    for event in events[:-1]:
        analysis.feed(event)
    assert analysis.app_view() is None  # the set comes last: nothing to build yet
    analysis.feed(events[-1])
    seen = analysis.app_view()
    assert seen is not None and seen.rows_fed == len(analysis.rows)
    assert analysis.sessions[0].app_outcome == "failed"
    fed = len(seen.analysis.messages)
    assert analysis.app_view() is seen and len(seen.analysis.messages) == fed  # unchanged
    analysis.feed(Data(99.0, "c1", "outlet", b'{"sn":"X","packetID":7}', True))
    assert analysis.app_view() is seen and len(seen.analysis.messages) == fed + 1
    assert seen.main_ids[fed] == len(analysis.messages) - 1
    analysis.finish()
    assert analysis.app_view() is seen and seen.analysis.finished


def test_live_feeding_gives_the_batch_truths() -> None:
    for name in (
        "rule_refusal",
        "rule_success_to_failure",
        "rule_sync_lost",
        "rule_progress_stops",
    ):
        batch = analyze(events_of(name))
        live = Analysis()
        for event in events_of(name):
            live.feed(event)
            live.app_view()
        live.finish()
        live.app_view()
        batch.app_view()
        assert [(s.outcome, s.app_outcome, s.app_reason) for s in live.sessions] == [
            (s.outcome, s.app_outcome, s.app_reason) for s in batch.sessions
        ], name


def _msg(
    side: Side, mark: Intervention | None, *, injected: bool = False, sent: bytes | None = None
) -> Message:
    raw = b'{"sn":"X","packetID":1,"payload":{"callbackName":22,"callbackArgs":[1,5]}}'
    events: list[Event] = [
        Open(0.0, "c1", "ws", "a:1", "o:2"),
        Data(
            1.0,
            "c1",
            side,
            raw if sent is None else sent,
            True,
            injected,
            mark,
            raw if sent else None,
        ),
    ]
    (msg,) = analyze(events).messages
    return msg


SWALLOWED = Intervention(
    "drop", "user", None, None, "reply to an injected request; the app never asked"
)


@pytest.mark.parametrize(
    ("side", "mark", "injected", "seen"),
    [
        ("app", None, False, "raw"),
        ("app", Intervention("drop", "rule", "r"), False, "raw"),  # the app did send it
        ("app", Intervention("reply", "rule", "r"), False, "raw"),
        ("app", Intervention("inject", "user"), True, None),  # the proxy's, toward the outlet
        ("outlet", None, False, "raw"),
        ("outlet", Intervention("drop", "rule", "r"), False, None),
        ("outlet", Intervention("close", "rule", "r"), False, None),
        ("outlet", SWALLOWED, False, None),
        ("outlet", Intervention("delay", "rule", "r", 5.0), False, "raw"),
        ("outlet", Intervention("hold", "user", None, 1.0), False, "raw"),
        ("outlet", Intervention("reply", "rule", "r"), True, "raw"),  # the proxy's answer
        ("outlet", Intervention("inject", "user"), True, "raw"),
    ],
)
def test_what_reaches_the_app(
    side: Side, mark: Intervention | None, injected: bool, seen: str | None
) -> None:
    msg = _msg(side, mark, injected=injected)
    assert app_bytes(msg) == (msg.raw if seen == "raw" else None)


def test_a_changed_message_reaches_the_app_as_forwarded() -> None:
    sent = b'{"sn":"X","packetID":1,"payload":{"callbackName":22,"callbackArgs":[1,9]}}'
    msg = _msg("outlet", Intervention("edit", "user"), sent=sent)
    assert msg.forwarded == sent and msg.args == [1, 5]
    assert app_bytes(msg) == sent


def test_the_report_says_what_was_done_and_what_the_app_saw() -> None:
    analysis = analyze(events_of("rule_success_to_failure"))
    lines = list(timeline(analysis))
    at = next(i for i, line in enumerate(lines) if "#5 " in line)
    assert lines[at + 1].strip() == f"⚑ changed by rule 1: {SET}"
    assert '"callbackArgs":[1,0]' in lines[at + 2] and "forwarded instead" in lines[at + 2]
    text = "\n".join(summary(analysis))
    assert "SUCCEEDED (app saw: FAILED)" in text
    assert "the app saw: the outlet update requested at t=0.020s failed" in text


def test_the_headless_printer_prints_the_intervention_after_its_message(
    capsys: pytest.CaptureFixture[str],
) -> None:
    analysis = Analysis()
    printer = HeadlessPrinter(analysis)
    for event in events_of("rule_progress_stops"):
        analysis.feed(event)
        printer(event)
    out = capsys.readouterr().out.splitlines()
    at = next(i for i, line in enumerate(out) if "#4 " in line)
    assert out[at + 1].strip() == "⚑ dropped by rule 1: cb:22 arg.1:40-100 -> drop"


@pytest.mark.parametrize(
    "name", ["rule_refusal", "rule_success_to_failure", "rule_sync_lost", "rule_progress_stops"]
)
@pytest.mark.parametrize("compact_every", [1, 1024])
def test_a_bounded_analysis_never_claims_another_app_outcome(name: str, compact_every: int) -> None:
    """``run --headless`` forgets printed rows: the app's view it gives is the full one's,
    unless rows were forgotten before the first intervention, and then it says so."""
    full = analyze(events_of(name))
    full.app_view()
    bounded = BoundedAnalysis(compact_every=compact_every)
    printer = HeadlessPrinter(bounded)
    with contextlib.redirect_stdout(io.StringIO()):
        for event in events_of(name):
            bounded.feed(event)
            printer(event)
        bounded.finish()
    seen = bounded.app_view()
    assert seen is not None
    for got, want in zip(bounded.sessions, full.sessions, strict=True):
        assert got.outcome == want.outcome
        if seen.started_at == 0:  # nothing forgotten before the view began: the same truths
            assert (got.app_outcome, got.app_reason) == (want.app_outcome, want.app_reason)
        elif got.app_reason is not None:  # a partial view says so
            assert "the earlier ones already forgotten" in got.app_reason
    if compact_every > 10:  # these traces are far shorter than a compaction
        assert seen.started_at == 0


def test_only_the_frames_of_an_intervened_event_carry_its_mark() -> None:
    """Garbage ends at the next '{': the event that brings it also completes the garbage's
    invalid frame, which was forwarded as received and must not inherit the mark."""
    mark = Intervention("reply", "rule", "cb:20 dir:app -> reply puback=0", None, "answered")
    request = b'{"packetID":123456,"payload":{"callbackName":20}}\n'
    events: list[Event] = [
        Open(0.0, "c1", "tcp", "app", "outlet"),
        Data(0.1, "c1", "app", b"garbage!!\n"),
        Data(0.2, "c1", "app", request, True, False, mark),
    ]
    garbage, asked = analyze(events).messages
    assert garbage.kind == "invalid" and garbage.intervention is None
    assert asked.intervention == mark


def test_bytes_left_in_a_value_when_a_recording_ends_without_a_close_are_shown() -> None:
    """A capture cut short (no close event): the start of a value is still a message."""
    events: list[Event] = [
        Open(0.0, "c1", "tcp", "app", "outlet"),
        Data(0.1, "c1", "app", b'{"packetID":1,'),
    ]
    (cut,) = analyze(events).messages
    assert cut.kind == "invalid" and cut.raw == b'{"packetID":1,'
    assert any("recording ended" in a.text for a in cut.annotations)
