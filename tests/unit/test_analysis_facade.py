"""The Analysis facade itself, beside the scenarios: feeding, time, finishing, queries."""

from __future__ import annotations

import weakref
from pathlib import Path

from proxy.core.analysis import Analysis, analyze, gc_paused
from proxy.core.analysis.schema import document
from proxy.core.events import Data
from proxy.store.recording import load_events
from tests.unit.test_analysis_ota import UPDATES, Wire

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"


def test_one_event_at_a_time_is_the_same_as_all_at_once() -> None:
    for path in sorted(SCENARIOS.glob("*.jsonl")):
        events = list(load_events(path).events)
        live = Analysis()
        for event in events:
            live.feed(event)
        live.finish()
        assert live.to_json() == analyze(events).to_json(), path.name


def test_an_event_back_in_time_is_analysed_at_the_time_before_it() -> None:
    w = Wire()
    w.open("c1")
    w.req("c1", 1, 12, dt=1.0)  # 0 at t=1.01
    reply = b'{"packetID": 1, "payload": {"callbackName": 12}}\n'
    w.events.append(Data(0.5, "c1", "outlet", reply))
    a = analyze(w.events)
    assert a.messages[1].t == a.messages[0].t == 1.01
    assert a.messages[1].kind == "response"
    assert "answered in 0.0 ms" in a.links[0].reason


def test_advance_before_a_deadline_changes_nothing_and_after_it_times_out() -> None:
    w = Wire()
    w.open("c1")
    w.req("c1", 1, 12, dt=1.0)  # t=1.01
    a = Analysis(reply_timeout=5.0)
    a.feed_all(w.events)
    generation = a.generation
    a.advance(6.0)
    assert a.generation == generation and not a.late_annotations
    a.advance(6.02)
    last = len(a.messages[0].annotations) - 1
    assert a.messages[0].annotations[last].code == "unanswered-request"
    assert a.late_annotations == [(0, last)] and a.generation == generation + 1
    a.advance(100.0)
    assert a.late_annotations == [(0, last)]  # given up on once


def test_finish_settles_once() -> None:
    w = Wire()
    w.open("c1")
    w.req("c1", 1, 12)
    a = Analysis()
    a.feed_all(w.events)
    a.finish()
    generation, notes = a.generation, list(a.late_annotations)
    a.finish()
    assert a.finished and a.generation == generation and a.late_annotations == notes
    ((msg_id, i),) = notes
    assert msg_id == 0 and "the capture ended" in a.messages[0].annotations[i].text


def test_queries() -> None:
    w = Wire()
    w.open("c1")
    w.req("c1", 1, 20)  # 0
    w.out("c1", 1, cb=20, args=UPDATES, PUBACK=1)  # 1
    w.req("c1", 2, 21, [1, 0])  # 2
    w.out("c1", 2, PUBACK=1)  # 3
    w.out("c1", 9, cb=22, args=[1, 10])  # 4
    a = analyze(w.events)
    assert [(link.src, link.dst) for link in a.links_of(2)] == [(2, 3), (2, 4)]
    assert a.links_of(-1) == a.links_of(99) == [] and a.links_of(1)[0].relation == "response"
    assert a.session_of(4) is a.sessions[0] and a.session_of(0) is None
    assert a.counts() == (5, 1, 3, 0, 1)
    assert a.numbered_sessions() == [(1, a.sessions[0])]
    assert a.to_json() == document(a.messages, a.links, a.sessions)


def test_a_dropped_analysis_is_freed_at_once_without_the_cyclic_gc() -> None:
    """Its parts refer back to it weakly: a cycle would keep a dropped analysis (and
    every message of a large capture) alive until the next full GC pass."""
    from proxy.core.retention import BoundedAnalysis

    events = list(load_events(SCENARIOS / "revb_outlet_tcp.jsonl").events)
    for kind in (Analysis, BoundedAnalysis):
        with gc_paused():
            a = kind()
            a.feed_all(events)
            a.finish()
            assert a.sessions and a.links  # the parts did their work
            alive = weakref.ref(a)
            del a
            assert alive() is None, kind.__name__
