"""The bounded analysis of `run --headless`: the same log, memory bounded by what is open."""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import io
import json
import tracemalloc
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proxy.core import report
from proxy.core.analysis import Analysis
from proxy.core.events import Close, Data, Event, Intervention, Open
from proxy.core.retention import BoundedAnalysis, ForgottenError
from proxy.mitm.live import HeadlessPrinter
from proxy.store.recording import load_events

ROOT = Path(__file__).resolve().parents[2]
# Not the intervention traces (rule_*): a bounded analysis that forgot an update's
# request before the first intervention cannot give the app's outcome, so its log may
# lack "(app saw: ...)"; tests/unit/test_two_truths.py checks it never says otherwise.
TRACES = sorted(
    p for p in (ROOT / "tests" / "scenarios").glob("*.jsonl") if not p.name.startswith("rule_")
) + sorted((ROOT / "captures").glob("sample-*.invcap"))
# the defaults, and windows short enough for the scenarios' seconds-long traces to
# settle their requests and updates well before they end (so much is forgotten)
OPTIONS: list[dict[str, Any]] = [{}, {"stall_window": 1.0, "reply_timeout": 0.5}]


def headless_log(
    analysis: Analysis, events: Iterable[Event], flush_after: Iterable[bool] | None = None
) -> str:
    """What `run --headless` prints: rows as traffic flows, clock ticks, the summary."""
    events = list(events)
    flags = list(flush_after) if flush_after is not None else [True] * len(events)
    printer = HeadlessPrinter(analysis)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        for i, event in enumerate(events):
            analysis.feed(event)
            if i + 1 < len(events):
                gap = events[i + 1].t - event.t
                for frac in (0.5, 0.999):
                    analysis.advance(event.t + gap * frac)
            if flags[i % len(flags)]:
                printer.flush()
        analysis.finish()
        printer.flush()
        print("\n".join(report.summary(analysis)))
    return out.getvalue()


@pytest.mark.parametrize("options", OPTIONS, ids=["default", "short-windows"])
@pytest.mark.parametrize("path", TRACES, ids=[p.name for p in TRACES])
def test_the_printed_log_is_the_same_with_retention(path: Path, options: dict[str, Any]) -> None:
    events = list(load_events(path).events)
    full = headless_log(Analysis(**options), events)
    bounded = BoundedAnalysis(compact_every=1, **options)
    assert headless_log(bounded, events) == full


RULE_TRACES = sorted((ROOT / "tests" / "scenarios").glob("rule_*.jsonl"))


@pytest.mark.parametrize("options", OPTIONS, ids=["default", "short-windows"])
@pytest.mark.parametrize("path", RULE_TRACES, ids=[p.name for p in RULE_TRACES])
def test_a_run_with_rules_prints_the_apps_view_as_the_full_analysis_does(
    path: Path, options: dict[str, Any]
) -> None:
    """run --headless with rules watches the app's view from the first row, so the
    forgetting printer loses none of what the app saw."""
    events = list(load_events(path).events)
    full = headless_log(Analysis(**options), events)
    bounded = BoundedAnalysis(compact_every=1, watch_app=True, **options)
    assert "app saw" in full
    assert headless_log(bounded, events) == full


def test_the_scenarios_are_forgotten_and_still_counted() -> None:
    """The equality above is not vacuous: with short windows, messages go mid-trace
    (what stays is the open updates and those active within two stall windows)."""
    forgot_some = forgotten = 0
    for path in TRACES:
        events = list(load_events(path).events)
        full = Analysis(**OPTIONS[1])
        bounded = BoundedAnalysis(compact_every=1, **OPTIONS[1])
        headless_log(full, events)
        headless_log(bounded, events)
        assert bounded.counts() == full.counts()
        gone = len(bounded.messages) - bounded.retained_messages()
        forgotten += gone
        forgot_some += gone > 0
    assert forgotten >= 50
    assert forgot_some >= len(TRACES) // 2


def test_late_remarks_on_printed_messages_are_still_printed() -> None:
    events = list(load_events(ROOT / "tests/scenarios/revb_outlet_tcp.jsonl").events)
    log = headless_log(BoundedAnalysis(compact_every=1), events)
    assert "#2 + i ota-restart: the outlet closed connection c1" in log
    assert "#11 + i ota-restart" in log
    stalled = list(load_events(ROOT / "tests/scenarios/stalled.jsonl").events)
    assert "+ ✗ ota-stalled" in headless_log(BoundedAnalysis(compact_every=1), stalled)


def push(pid: int, cb: int, args: Any) -> bytes:
    body = {
        "sn": "11B27540076",
        "packetID": pid,
        "payload": {"callbackName": cb, "callbackArgs": args},
    }
    return json.dumps(body, separators=(",", ":")).encode() + b"\n"


def chatter(connections: int, per_connection: int, t0: float = 1_700_000_000.0) -> list[Event]:
    """Request/reply pairs and sensor pushes on connections that come and go."""
    events: list[Event] = []
    t = t0
    for c in range(connections):
        conn = f"c{c + 1}"
        events.append(Open(t, conn, "tcp", f"127.0.0.1:{50000 + c}", "10.0.0.5:3333"))
        for i in range(per_connection):
            t += 0.05
            pid = 100000 + i
            events.append(
                Data(t, conn, "app", b'{"packetID":%d,"payload":{"callbackName":9}}\n' % pid)
            )
            events.append(Data(t + 0.01, conn, "outlet", push(pid, 9, [1, 1])))
            events.append(Data(t + 0.02, conn, "outlet", push(900000 + i, 11, [1, {"temp": 21.5}])))
            t += 0.02
        t += 0.1
        events.append(Close(t, conn, "outlet" if c % 2 else "app"))
    return events


def test_memory_is_bounded_by_what_is_open_not_by_history() -> None:
    analysis = BoundedAnalysis()
    printer = HeadlessPrinter(analysis, echo=False)
    peak = 0
    for event in chatter(40, 500):  # 60,000 messages
        analysis.feed(event)
        printer(event)
        peak = max(peak, analysis.retained_messages())
    assert len(analysis.messages) == 60_000
    # the last stall window of traffic (60 s: ~2,600 messages here), what came since
    # the last compaction (up to half as much again) and the connection gaps: 5,134 seen
    assert analysis.lookback == 60
    assert peak <= 6_000
    assert len(analysis.connections) <= 4  # those of the messages still held
    assert analysis.counts().connections == 40
    assert analysis.counts().links == 20_000


def test_a_plain_analysis_keeps_everything() -> None:
    """The yardstick for the test above: without retention nothing is let go."""
    analysis = Analysis()
    printer = HeadlessPrinter(analysis, echo=False)
    for event in chatter(4, 500):
        analysis.feed(event)
        printer(event)
    assert len(list(analysis.messages)) == 6000


def test_what_is_open_is_kept() -> None:
    """A request waiting for its reply and a running update outlive any compaction."""
    analysis = BoundedAnalysis(compact_every=1, stall_window=5.0)  # 5 s look back
    printer = HeadlessPrinter(analysis, echo=False)
    t = 100.0
    events: list[Event] = [
        Open(t, "a", "tcp", "127.0.0.1:5000", "10.0.0.5:3333"),
        Data(t + 0.1, "a", "app", b'{"packetID":7,"payload":{"callbackName":9}}\n'),  # 0
        Data(
            t + 0.2,
            "a",
            "app",
            b'{"packetID":8,"payload":{"callbackName":21,"callbackArgs":[1,0]}}\n',
        ),
    ]
    events += [Data(t + 1 + i * 0.4, "a", "outlet", push(500 + i, 11, [1, {}])) for i in range(50)]
    for event in events:
        analysis.feed(event)
        printer(event)
    assert analysis.holds(0) and analysis.holds(1)
    assert not analysis.holds(10)  # a printed sensor push nothing refers to
    with pytest.raises(ForgottenError, match="message 10 is forgotten"):
        analysis.messages[10]
    # the reply still finds its request (and its link is held until it is printed)
    analysis.feed(Data(t + 22, "a", "outlet", push(7, 9, [1, 1])))  # in the reply timeout
    assert [(link.src, link.relation) for link in analysis.links_of(52)] == [(0, "response")]
    assert analysis.messages[52].kind == "response"


def big_push_events(size: int) -> list[Event]:
    value = b'{"sn":"x","packetID":5,"payload":{"callbackName":4,"callbackArgs":["'
    value += b"a" * size + b'"]}}\n'
    return [
        Open(10.0, "big", "tcp", "127.0.0.1:5001", "10.0.0.5:3333"),
        Data(10.1, "big", "outlet", value),
        Close(10.2, "big", "outlet"),
    ]


@pytest.mark.parametrize("bounded", [True, False], ids=["bounded", "plain"])
def test_a_20_mb_value_is_let_go_once_its_connection_closed_and_it_was_printed(
    bounded: bool,
) -> None:
    size = 20 << 20
    gc.collect()
    tracemalloc.start()
    try:
        analysis: Analysis = BoundedAnalysis() if bounded else Analysis()
        printer = HeadlessPrinter(analysis, echo=False)
        for event in big_push_events(size):
            analysis.feed(event)
            printer(event)
        del event
        analysis.advance(100.0)  # the clock passes the look back, as `run` ticks it
        printer.flush()
        gc.collect()
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(analysis.messages) == 1
    if bounded:
        assert isinstance(analysis, BoundedAnalysis)
        assert analysis.retained_bytes() == 0
        assert analysis.retained_messages() == 0
        assert held < 1 << 20
    else:
        assert held > size  # the yardstick: a plain analysis keeps the value


@settings(max_examples=40, deadline=None)
@given(
    index=st.integers(0, len(TRACES) - 1),
    flushes=st.lists(st.booleans(), min_size=1, max_size=12),
    compact_every=st.integers(1, 8),
    short=st.booleans(),
)
def test_when_the_printer_runs_does_not_change_the_log(
    index: int, flushes: list[bool], compact_every: int, short: bool
) -> None:
    """The printer runs when traffic pauses: at any points, the log is the same."""
    options = OPTIONS[1] if short else OPTIONS[0]
    events = list(load_events(TRACES[index]).events)
    full = headless_log(Analysis(**options), events, flushes)
    bounded = BoundedAnalysis(compact_every=compact_every, **options)
    assert headless_log(bounded, events, flushes) == full


def refused_updates(n: int) -> list[Event]:
    """``n`` outlet updates, each refused at once (PUBACK 0), a minute apart."""
    events: list[Event] = [Open(0.0, "a", "tcp", "127.0.0.1:5000", "10.0.0.5:3333")]
    for i in range(n):
        t = 60.0 * (i + 1)
        pid = 1000 + i
        request = b'{"packetID":%d,"payload":{"callbackName":21,"callbackArgs":[1,0]}}\n' % pid
        events.append(Data(t, "a", "app", request))
        events.append(Data(t + 0.01, "a", "outlet", b'{"sn":"x","packetID":%d,"PUBACK":0}\n' % pid))
    return events


def test_old_finished_updates_are_counted_not_listed() -> None:
    events = refused_updates(50)
    full_log = headless_log(Analysis(stall_window=1.0), events)
    bounded = BoundedAnalysis(compact_every=1, keep_sessions=3, stall_window=1.0)
    log = headless_log(bounded, events)
    assert len(bounded.sessions) <= 4
    assert bounded.counts().sessions == 50
    # the timeline is the same; the summary lists the last updates under their numbers
    summary_at = full_log.index("100 messages on 1 connection")
    assert log[:summary_at] == full_log[:summary_at]
    assert "100 messages on 1 connection, 50 links, 50 OTA updates" in log
    assert "earlier finished OTA updates not listed" in log
    assert "OTA 50: outlet update, method wifi, requested by #98" in log
    assert "OTA 1:" in full_log and "OTA 1:" not in log
    assert log[log.index("OTA 48:") :] == full_log[full_log.index("OTA 48:") :]


def test_answered_requests_are_not_kept_for_the_reply_timeout() -> None:
    """A flood of answered requests, all within one reply timeout, holds nothing."""
    # a look back of 2 s (the copy window) holds 800 of the pairs below
    analysis = BoundedAnalysis(compact_every=256, stall_window=1.0)
    analysis.feed(Open(0.0, "a", "tcp", "127.0.0.1:5000", "10.0.0.5:3333"))

    def pairs(start: int, n: int) -> None:
        for i in range(start, start + n):
            t = 1.0 + i * 2.5e-3  # 10,000 pairs in 25 s: inside the 30 s reply timeout
            analysis.feed(Data(t, "a", "app", b'{"packetID":%d,"payload":{"callbackName":9}}' % i))
            analysis.feed(Data(t, "a", "outlet", push(i, 9, [1, 1])))
            if i % 50 == 0:  # as if printed (formatting them would only slow the test)
                analysis.forget_printed(
                    len(analysis.rows), len(analysis.messages), len(analysis.late_annotations)
                )

    pairs(0, 2000)
    gc.collect()
    tracemalloc.start()
    try:
        pairs(2000, 10_000)
        gc.collect()
        grown, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert analysis.counts().links == 12_000
    # the look back's 800 pairs and what came since the last compaction: 1.5 MB
    # measured; 3.5 MB when each answered request waited for its timeout
    assert grown < 2_400_000


def test_a_closed_connection_stays_while_a_held_message_is_on_it() -> None:
    """The analysis reads a held request's connection (who asked, from where)."""
    events = list(load_events(ROOT / "tests/scenarios/revb_outlet_tcp.jsonl").events)
    analysis = BoundedAnalysis(compact_every=1, stall_window=1.0, reply_timeout=0.5)
    printer = HeadlessPrinter(analysis, echo=False)
    for event in events:
        analysis.feed(event)
        printer(event)
    assert analysis.retained_messages() < len(analysis.messages)  # it did forget
    request = analysis.sessions[0].request
    assert request is not None and analysis.messages[request].conn == "c1"
    assert "c1" in analysis.connections
    assert analysis.connections["c1"].closed is not None


def test_the_apps_view_of_a_long_run_with_rules_forgets_too() -> None:
    """run --headless with rules watches the app's view: it forgets what it printed as
    the main analysis does, instead of holding every message of the run."""
    delayed = Intervention("delay", "rule", "1", 0.01)
    events = [
        dataclasses.replace(e, intervention=delayed)
        if isinstance(e, Data) and b'"callbackName":11' in e.data
        else e
        for e in chatter(connections=20, per_connection=150)
    ]
    full = Analysis(watch_app=True, **OPTIONS[1])
    bounded = BoundedAnalysis(compact_every=1, watch_app=True, **OPTIONS[1])
    assert headless_log(bounded, events) == headless_log(full, events)
    seen, everything = bounded.app_view(), full.app_view()
    assert seen is not None and everything is not None
    view = seen.analysis
    assert isinstance(view, BoundedAnalysis)
    assert len(view.messages) == len(everything.analysis.messages) == 20 * 150 * 3
    assert view.retained_messages() < len(view.messages) // 10
    assert bounded.retained_messages() < len(bounded.messages) // 10  # as the main one
    assert seen.main_ids.runs == everything.main_ids.runs == 1  # delays shift no id
    assert len(seen.marked) < len(everything.marked) // 10


@pytest.mark.parametrize("path", RULE_TRACES, ids=[p.name for p in RULE_TRACES])
def test_a_long_run_with_rules_names_the_same_messages_as_the_full_analysis(path: Path) -> None:
    """The app's view numbers its messages without the ones the app never saw; its
    reasons name messages by that number, mapped back to the main analysis' ids. Once
    a bounded run had forgotten old ids, a reason naming an older message ("the last
    cb20 (#N)") was mapped to a wrong one."""
    events = list(load_events(path).events)
    first = next(i for i, e in enumerate(events) if isinstance(e, Data) and i > 1)
    data = events[first]
    assert isinstance(data, Data)
    shifted = list(events)  # the app never saw that message: the numberings differ
    shifted[first] = dataclasses.replace(data, intervention=Intervention("drop", "rule", "9"))
    run: list[Event] = []
    t = 0.0
    for r in range(40):
        for part, trace in (("a", shifted), ("b", events)):
            for e in trace:
                run.append(
                    dataclasses.replace(e, t=t + e.t - trace[0].t, conn=f"{part}{r}{e.conn}")
                )
            t = run[-1].t + 200.0
    full = Analysis(watch_app=True)
    bounded = BoundedAnalysis(compact_every=1, watch_app=True)
    headless_log(full, run)
    headless_log(bounded, run)
    assert bounded.retained_messages() < len(bounded.messages)  # it did forget
    reasons = dict(full.numbered_sessions())
    listed = bounded.numbered_sessions()
    assert listed and any("#" in (s.app_reason or "") for _, s in listed)
    assert [(n, s.app_reason) for n, s in listed] == [(n, reasons[n].app_reason) for n, _ in listed]
