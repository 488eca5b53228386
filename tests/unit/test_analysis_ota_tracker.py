"""The OTA state machine (proxy.core.analysis.ota) through its own entry points: its
stall clock, its end-of-capture settling and its device_type mapping."""

from __future__ import annotations

import math

from proxy.core.analysis import Analysis
from proxy.core.protocol.ota import target_of_device_type
from tests.unit.test_analysis_ota import UPDATES, Wire


def started(stall_window: float = 60.0) -> tuple[Analysis, Wire]:
    """An outlet update requested at t=0.03, acknowledged, with progress at t=1.04."""
    w = Wire()
    w.open("c1", "ws")  # t=0.01
    w.req("c1", 1, 20, dt=0.01)  # 0
    w.out("c1", 1, cb=20, args=UPDATES, PUBACK=1, dt=0.01)  # 1
    w.req("c1", 2, 21, [1, 0], dt=0.01)  # 2, t=0.04
    w.out("c1", 2, PUBACK=1, dt=0.01)  # 3
    w.out("c1", 900, cb=22, args=[1, 10], dt=1.0)  # 4, t=1.05
    a = Analysis(stall_window=stall_window)
    a.feed_all(w.events)
    return a, w


def test_the_device_type_names_the_target() -> None:
    assert [target_of_device_type(d) for d in (1, 2, 3, 0, None, 7)] == [
        "outlet",
        "deco",
        "outlet",
        None,
        None,
        None,
    ]


def test_tick_stalls_an_update_only_past_its_window_and_says_when_it_would() -> None:
    a, _ = started(stall_window=10.0)
    (session,) = a.ota.sessions
    assert a.ota.tick(11.0) == 11.05  # quiet for 9.95 s: the next check is due at 11.05
    outcomes = [session.outcome]
    generation = a.generation
    assert a.ota.tick(11.06) == math.inf
    outcomes.append(session.outcome)
    assert outcomes == ["in-progress", "stalled"] and a.generation == generation + 1
    assert a.messages[4].has("ota-stalled")
    assert a.late_annotations[-1] == (4, len(a.messages[4].annotations) - 1)


def test_finish_calls_an_update_inside_its_window_in_progress() -> None:
    a, _ = started(stall_window=10.0)
    a.ota.finish(5.05)
    (session,) = a.ota.sessions
    assert session.outcome == "in-progress"
    assert "the capture ends 4.0 s after the update's last message" in session.reason


def test_an_outlet_restart_counts_for_the_outlet_update_on_that_outlet() -> None:
    a, w = started()
    w.events.clear()
    w.close("c1", "outlet")
    a.feed_all(w.events)
    (session,) = a.ota.sessions
    assert session.restarts == 1
    assert a.messages[4].has("ota-restart")
    assert session is a.session_of(4) and a.ota.open  # still open: it goes on after the restart


def test_the_tracker_draws_its_links_through_the_host() -> None:
    """A facade subclass (the bounded analysis) may keep links its own way."""
    drawn: list[tuple[int, int, str]] = []

    class Host(Analysis):
        def _link(self, src: int, dst: int, relation: object, reason: str) -> None:
            drawn.append((src, dst, str(relation)))

    _, w = started()
    a = Host()
    a.feed_all(w.events)
    assert drawn == [(0, 1, "response"), (2, 3, "ota-ack"), (2, 4, "ota-progress")]
    assert a.links == []
