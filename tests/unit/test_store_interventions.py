"""Interventions in captures and traces (DESIGN 4.1, issue 10 item 4): written, read back
without loss through both formats, validated field by field, and scrubbed by redaction."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from proxy.core.analysis import analyze
from proxy.core.events import (
    INTERVENTION_ACTIONS,
    Close,
    Data,
    Event,
    Intervention,
    Open,
    Side,
)
from proxy.store.capture import CAPTURE_KEY, read_capture, write_capture
from proxy.store.redact import redact_events
from proxy.store.trace import read_trace, write_trace
from tui.export import visible_events

FAST = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

texts = st.text(max_size=12)
interventions = st.builds(
    Intervention,
    action=st.sampled_from(INTERVENTION_ACTIONS),
    by=st.sampled_from(["rule", "user"]),
    rule=st.none() | texts,
    held=st.none() | st.floats(0.0, 1e6, allow_nan=False) | st.integers(0, 10**6).map(float),
    why=st.none() | texts,
)


@st.composite
def events_with_interventions(draw: st.DrawFn) -> list[Event]:
    out: list[Event] = [Open(0.0, "c1", draw(st.sampled_from(["tcp", "ws"])), "a:1", "o:2")]
    t = 0.0
    for _ in range(draw(st.integers(0, 12))):
        t += draw(st.floats(0.0, 10.0, allow_nan=False))
        text = draw(st.booleans())
        payload = draw(st.binary(max_size=30) | texts.map(str.encode))
        mark = draw(st.none() | interventions)
        original = draw(st.none() | st.binary(max_size=30) | texts.map(str.encode))
        side: Side = draw(st.sampled_from(["app", "outlet"]))
        injected = draw(st.booleans())
        # ``original`` is kept only beside an intervention (proxy.store.intervention)
        out.append(Data(t, "c1", side, payload, text, injected, mark, original if mark else None))
    out.append(Close(t, "c1", "proxy"))
    return out


def fields(events: list[Event]) -> list[tuple[Any, ...]]:
    return [(type(e).__name__, *(getattr(e, n) for n in e.__slots__)) for e in events]


@FAST
@given(events=events_with_interventions())
def test_capture_to_trace_to_capture_keeps_every_intervention(
    tmp_path: Path, events: list[Event]
) -> None:
    a, mid, b = tmp_path / "a.invcap", tmp_path / "m.jsonl", tmp_path / "b.invcap"
    write_capture(a, {"note": "x"}, events, overwrite=True)
    with read_capture(a) as loaded:
        write_trace(mid, loaded.meta, loaded.events, overwrite=True)
    assert loaded.problems == []
    with read_trace(mid) as loaded:
        write_capture(b, loaded.meta, loaded.events, overwrite=True)
    assert loaded.problems == []
    assert b.read_bytes() == a.read_bytes()
    with read_capture(b) as again:
        assert fields(list(again.events)) == fields(events)


@FAST
@given(events=events_with_interventions())
def test_trace_to_capture_to_trace_is_identical(tmp_path: Path, events: list[Event]) -> None:
    first = io.StringIO()
    write_trace(first, {"created": 1.0}, events)
    (tmp_path / "a.jsonl").write_text(first.getvalue(), encoding="utf-8")
    with read_trace(tmp_path / "a.jsonl") as loaded:
        write_capture(tmp_path / "b.invcap", loaded.meta, loaded.events, overwrite=True)
    with read_capture(tmp_path / "b.invcap") as loaded:
        second = io.StringIO()
        write_trace(second, loaded.meta, loaded.events)
    assert second.getvalue() == first.getvalue()


def test_a_trace_spells_the_intervention_and_the_received_bytes_as_4_1_says() -> None:
    mark = Intervention("set", "rule", "cb:23 -> set payload.callbackArgs.1=0", None, "changed")
    binary = Intervention("edit", "user")
    out = io.StringIO()
    write_trace(
        out,
        None,
        [
            Data(1.0, "c1", "outlet", b'{"a":0}', True, False, mark, b'{"a":1}'),
            Data(2.0, "c1", "outlet", b"\xff", False, False, binary, b"\xfe"),
            Data(3.0, "c1", "app", b"{}", True, False, Intervention("delay", "rule", "r", 5.0)),
        ],
    )
    first, second, third = (json.loads(line) for line in out.getvalue().splitlines())
    assert first["intervention"] == {
        "action": "set",
        "by": "rule",
        "rule": "cb:23 -> set payload.callbackArgs.1=0",
        "held": None,
        "why": "changed",
    }
    assert first["text"] == '{"a":0}' and first["original_text"] == '{"a":1}'
    assert second["original_b64"] == "/g==" and "original_text" not in second
    assert third["intervention"]["held"] == 5.0 and "why" not in third["intervention"]
    assert "original_text" not in third and "original_b64" not in third


GOOD = {"t": 1.0, "conn": "c", "event": "data", "from": "app", "text": "{}"}


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"intervention": "drop"}, "field 'intervention' should be an object, not 'drop'"),
        ({"intervention": {"action": "nuke", "by": "rule"}}, "'intervention.action' should be"),
        ({"intervention": {"by": "rule"}}, "'intervention.action' should be one of drop"),
        ({"intervention": {"action": "drop", "by": "god"}}, "'intervention.by' should be"),
        ({"intervention": {"action": "drop", "by": "rule", "rule": 3}}, "'intervention.rule'"),
        ({"intervention": {"action": "drop", "by": "rule", "why": []}}, "'intervention.why'"),
        ({"intervention": {"action": "delay", "by": "rule", "held": "5"}}, "'intervention.held'"),
        ({"intervention": {"action": "delay", "by": "rule", "held": True}}, "'intervention.held'"),
        ({"intervention": {"action": "delay", "by": "rule", "held": -1}}, "'intervention.held'"),
        ({"intervention": {"action": "delay", "by": "rule", "held": 1e400}}, "finite"),
        (
            {"intervention": {"action": "set", "by": "rule"}, "original_b64": "%%"},
            "field 'original_b64' is not valid base64",
        ),
        (
            {"intervention": {"action": "set", "by": "rule"}, "original_text": 7},
            "field 'original_text' should be a string",
        ),
        (
            {
                "intervention": {"action": "set", "by": "rule"},
                "original_text": "a",
                "original_b64": "",
            },
            "both 'original_text' and 'original_b64'",
        ),
    ],
)
def test_a_bad_intervention_in_a_trace_is_a_clear_problem_and_the_rest_is_read(
    tmp_path: Path, extra: dict[str, Any], message: str
) -> None:
    path = tmp_path / "bad.jsonl"
    lines = [{**GOOD, **extra}, {**GOOD, "t": 2.0}]
    # 1e400 is no JSON a writer makes; write the number by hand
    text = "\n".join(json.dumps(line).replace("Infinity", "1e400") for line in lines) + "\n"
    path.write_text(text, encoding="utf-8")
    with read_trace(path) as loaded:
        events = list(loaded.events)
    assert [e.t for e in events] == [2.0]
    (problem,) = loaded.problems
    assert problem.where == "line 1" and message in problem.message, problem.message


def test_a_bad_intervention_in_a_capture_is_a_clear_problem(tmp_path: Path) -> None:
    good = {"t": 1.0, "conn": "c", "event": "data", "from": "app", "data": b"{}", "text": True}
    records = [
        {CAPTURE_KEY: 1, "created": 0.0},
        {**good, "intervention": {"action": "drop", "by": 1}},
        {**good, "intervention": {"action": "set", "by": "user"}, "original": "not bin"},
        {**good, "t": 2.0},
    ]
    path = tmp_path / "bad.invcap"
    path.write_bytes(b"".join(msgpack.packb(r, use_bin_type=True) for r in records))
    with read_capture(path) as loaded:
        events = list(loaded.events)
    assert [e.t for e in events] == [2.0]
    messages = [p.message for p in loaded.problems]
    assert "'intervention.by' should be 'rule' or 'user', not 1" in messages[0]
    assert "field 'original' should be bytes" in messages[1]


def test_unknown_keys_of_an_intervention_are_ignored(tmp_path: Path) -> None:
    path = tmp_path / "new.jsonl"
    mark = {"action": "hold", "by": "user", "held": 2, "colour": "red"}
    path.write_text(json.dumps({**GOOD, "intervention": mark, "later": 1}) + "\n")
    with read_trace(path) as loaded:
        (event,) = list(loaded.events)
    assert loaded.problems == []
    assert isinstance(event, Data)
    assert event.intervention == Intervention("hold", "user", None, 2.0, None)


def test_redaction_scrubs_what_was_received_too() -> None:
    secret = b'{"packetID":1,"payload":{"callbackName":2,"callbackArgs":{"pass":"hunter2"}}}\n'
    sent = b'{"packetID":1,"payload":{"callbackName":2,"callbackArgs":{"pass":"x"}}}\n'
    events: list[Event] = [
        Open(0.0, "c1", "tcp", "a:1", "o:2"),
        Data(1.0, "c1", "app", sent, True, False, Intervention("edit", "user"), secret),
    ]
    out, _ = redact_events(events)
    (data,) = [e for e in out if isinstance(e, Data)]
    assert data.original is not None and b"hunter2" not in data.original
    assert data.intervention == Intervention("edit", "user")


def test_the_tui_export_keeps_interventions_and_what_was_received() -> None:
    mark = Intervention("set", "rule", "cb:23 -> set payload.callbackArgs.1=0")
    got = b'{"sn":"X","packetID":5,"payload":{"callbackName":23,"callbackArgs":[1,1]}}'
    sent = b'{"sn":"X","packetID":5,"payload":{"callbackName":23,"callbackArgs":[1,0]}}'
    dropped = Intervention("drop", "rule", "cb:22 -> drop")
    progress = b'{"sn":"X","packetID":6,"payload":{"callbackName":22,"callbackArgs":[1,50]}}'
    events: list[Event] = [
        Open(0.0, "c1", "ws", "a:1", "o:2"),
        Data(1.0, "c1", "outlet", sent, True, False, mark, got),
        Data(2.0, "c1", "outlet", progress, True, False, dropped),
    ]
    analysis = analyze(events)
    out = visible_events(analysis, range(len(analysis.rows)))
    assert fields([e for e in out if isinstance(e, Data)]) == fields(events[1:])
