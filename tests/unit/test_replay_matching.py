"""Replay scripts, request matching, packetID rewriting and reply diffs: pure functions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from proxy.core.analysis import analyze
from proxy.core.events import Close, Data, Event, Open
from proxy.replay.diff import MISSING, diff_json, diff_reply, normalize_reply
from proxy.replay.script import (
    Matcher,
    RecordedRequest,
    build_script,
    rewrite_packet_id,
)
from proxy.store.recording import load_events

SCENARIOS = Path(__file__).parent.parent / "scenarios"


def _trace_lines(name: str) -> list[dict[str, Any]]:
    lines = (SCENARIOS / name).read_text().splitlines()
    return [json.loads(line) for line in lines[1:] if line.strip()]


def _request(value: dict[str, Any]) -> bytes:
    return json.dumps(value).encode() + b"\n"


# ---------------------------------------------------------------------- scripts


def test_revb_script_times_the_ota_story_from_the_cb21_request() -> None:
    with load_events(SCENARIOS / "revb_outlet_tcp.jsonl") as src:
        script = build_script(analyze(src.events))
    lines = _trace_lines("revb_outlet_tcp.jsonl")
    cb21_t = next(
        ln["t"] for ln in lines if ln.get("from") == "app" and '"callbackName":21' in ln["text"]
    )
    c1_close = next(ln["t"] for ln in lines if ln["event"] == "close" and ln["conn"] == "c1")

    assert [r.callback for r in script.requests] == [20, 21]
    cb20, cb21 = script.requests
    assert len(cb20.replies) == 1 and cb20.replies[0].echoes
    assert cb21.replies == ()  # revB never acknowledges an outlet update
    assert [c.conn for c in script.connections] == ["c1", "c2", "c3"]

    c1, c2, c3 = script.connections
    (close1,) = c1.actions
    assert close1.kind == "close" and close1.anchor == cb21.msg_id
    assert close1.delay == pytest.approx(c1_close - cb21_t)

    sync = c2.actions[0]
    assert sync.callback == 21 and sync.echoes  # carries the request's packetID
    assert all(a.anchor == cb21.msg_id for a in c2.actions + c3.actions)
    assert [a.kind for a in c2.actions][-1] == "close"
    assert not any(a.echoes for a in c2.actions[1:])  # progress has its own packetIDs
    # pushes keep their recorded order and offsets from the request
    offsets = [a.delay for a in c2.actions]
    assert offsets == sorted(offsets) and offsets[0] == pytest.approx(2.64 - cb21_t)
    assert c3.actions[0].callback == 12


def _ev(
    t: float, conn: str, kind: str, side: str = "", text: str = "", by: Any = None, err: Any = None
) -> Event:
    if kind == "open":
        return Open(t, conn, "tcp", "127.0.0.1:5000", "10.0.0.5:3333")
    if kind == "close":
        return Close(t, conn, by, err)
    return Data(t, conn, side, text.encode())  # type: ignore[arg-type]


def test_down_time_is_measured_by_the_attempts_that_found_the_outlet_down() -> None:
    unreachable = "outlet unreachable: [Errno 111] Connect call failed"
    events = [
        _ev(0.0, "c1", "open"),
        _ev(0.1, "c1", "data", "app", '{"packetID":111111,"payload":{"callbackName":5}}\n'),
        _ev(1.0, "c1", "close", by="outlet"),
        _ev(1.1, "c2", "open"),
        _ev(1.1, "c2", "close", by="proxy", err=unreachable),
        _ev(1.5, "c3", "open"),
        _ev(1.5, "c3", "close", by="proxy", err=unreachable),
        _ev(2.0, "c4", "open"),
        _ev(2.1, "c4", "data", "outlet", '{"sn":"X","packetID":5,"payload":{"callbackName":12}}'),
        _ev(3.0, "c4", "close", by="app"),
    ]
    script = build_script(analyze(events))
    assert [c.conn for c in script.connections] == ["c1", "c4"]
    assert script.failed_attempts == 2
    (close,) = script.connections[0].actions
    assert close.kind == "close"
    assert close.anchor == script.requests[0].msg_id and close.delay == pytest.approx(0.9)
    assert close.down == pytest.approx(0.5)
    # the app closed c4: nothing for the outlet to reproduce
    assert [a.kind for a in script.connections[1].actions] == ["push"]


def test_sensor_pushes_follow_the_connection_and_status_pushes_their_control_request() -> None:
    sensors = '{"sn":"X","packetID":7,"payload":{"callbackName":11,"callbackArgs":[1,{"lux":3}]}}'
    events = [
        _ev(10.0, "c1", "open"),
        _ev(12.0, "c1", "data", "outlet", sensors),
        _ev(
            13.0,
            "c1",
            "data",
            "app",
            '{"packetID":222222,"payload":{"callbackName":10,"callbackArgs":[1,1]}}',
        ),
        _ev(13.1, "c1", "data", "outlet", '{"sn":"X","packetID":222222,"PUBACK":1}'),
        _ev(
            13.3,
            "c1",
            "data",
            "outlet",
            '{"sn":"X","packetID":8,"payload":{"callbackName":9,"callbackArgs":[1,0]}}',
        ),
    ]
    script = build_script(analyze(events))
    (req,) = script.requests
    assert req.callback == 10 and req.replies[0].delay == pytest.approx(0.1)
    sensor, status = script.connections[0].actions
    assert sensor.callback == 11 and sensor.anchor is None and sensor.delay == pytest.approx(2.0)
    assert status.callback == 9 and status.anchor == req.msg_id
    assert status.delay == pytest.approx(0.3)
    assert not status.echoes


# ---------------------------------------------------------------------- matching


def _req(msg_id: int, conn: str, callback: int, args: Any = None) -> RecordedRequest:
    return RecordedRequest(
        msg_id, float(msg_id), conn, callback, "", args, 100000 + msg_id, b"", ()
    )


def test_matcher_consumes_in_order_preferring_the_connection_being_played() -> None:
    reqs = [_req(0, "c1", 12), _req(1, "c1", 20), _req(2, "c2", 12), _req(3, "c3", 12)]
    m = Matcher(reqs)
    first = m.match(12, None, "c2")
    assert first is not None and (first.request.msg_id, first.how) == (2, "exact")
    nxt = m.match(12, None, "c2")  # c2's is used: the first unused one in recorded order
    assert nxt is not None and (nxt.request.msg_id, nxt.how) == (0, "exact")
    assert m.match(12, None, "c1").request.msg_id == 3  # type: ignore[union-attr]
    again = m.match(12, None, "c1")
    assert again is not None and again.how == "reused" and again.request.msg_id == 3


def test_matcher_arguments_must_match_else_falls_back_and_says_so() -> None:
    reqs = [_req(0, "c1", 21, [1, 0]), _req(1, "c1", 10, [1, 1]), _req(2, "c1", 10, [1, 0])]
    m = Matcher(reqs)
    exact = m.match(10, [1, 0], "c1")
    assert exact is not None and (exact.request.msg_id, exact.how) == (2, "exact")
    other = m.match(21, [2, 1], "c1")
    assert other is not None and (other.request.msg_id, other.how) == (0, "other-args")
    assert m.match(99, None, "c1") is None
    # key order inside an object argument does not matter
    m2 = Matcher([_req(0, "c1", 2, [{"a": 1, "b": 2}])])
    found = m2.match(2, [{"b": 2, "a": 1}], "c1")
    assert found is not None and found.how == "exact"


# ---------------------------------------------------------------------- packetIDs


def test_rewrite_keeps_the_bytes_and_touches_only_the_packet_id() -> None:
    raw = b'{"sn": "11B", "packetID":  414883, "payload": {"callbackArgs": [414883, 4148830]}}'
    out = rewrite_packet_id(raw, 414883, 512345)
    assert out == raw.replace(b"414883,", b"512345,", 1)
    assert rewrite_packet_id(b'{"packetID":4148830}', 414883, 1) == b'{"packetID":4148830}'
    assert rewrite_packet_id(b'{"packetID":"7"}', "7", 8) == b'{"packetID":8}'
    added = rewrite_packet_id(b'{"sn":"X","PUBACK":1}', None, 123456)
    assert json.loads(added) == {"sn": "X", "PUBACK": 1, "packetID": 123456}


# ---------------------------------------------------------------------- diffs


def _cb20(available: str, pid: int = 1, sn: str = "SN1") -> dict[str, Any]:
    return {
        "sn": sn,
        "packetID": pid,
        "PUBACK": 1,
        "payload": {
            "callbackName": 20,
            "callbackArgs": {"IM": {"fw_rev": "0.0.1", "available_fw_rev": available}},
        },
    }


def test_diff_names_the_changed_field_inside_the_arguments() -> None:
    lines = diff_reply("cb20 reply", 20, _cb20("0.0.2"), _cb20("0.0.3", pid=2))
    assert lines == ['cb20 reply: IM.available_fw_rev: "0.0.2" -> "0.0.3"']
    assert diff_reply("cb20 reply", 20, _cb20("0.0.2", pid=1), _cb20("0.0.2", pid=9)) == []


def test_serial_numbers_differ_unless_ignored() -> None:
    a, b = _cb20("1", sn="AAA"), _cb20("1", sn="BBB")
    assert diff_reply("cb20 reply", 20, a, b) == ['cb20 reply: sn: "AAA" -> "BBB"']
    assert diff_reply("cb20 reply", 20, a, b, ignore_sn=True) == []


def test_sensor_readings_are_ignored_but_a_new_sensor_is_not() -> None:
    def cb11(readings: dict[str, Any]) -> dict[str, Any]:
        return {
            "sn": "X",
            "packetID": 3,
            "payload": {"callbackName": 11, "callbackArgs": [1, readings]},
        }

    assert diff_reply("cb11 reply", 11, cb11({"lux": 3}), cb11({"lux": 90})) == []
    lines = diff_reply("cb11 reply", 11, cb11({"lux": 3}), cb11({"lux": 3, "AQI": 40}))
    assert lines == ['cb11 reply: [1].AQI: added "<reading>"']


def test_missing_unexpected_and_structural_differences() -> None:
    rec = {
        "sn": "X",
        "packetID": 1,
        "PUBACK": 1,
        "payload": {"callbackName": 9, "callbackArgs": [1, 0]},
    }
    new = {
        "sn": "X",
        "packetID": 2,
        "PUBACK": 0,
        "ts": 99,
        "payload": {"callbackName": 9, "callbackArgs": [1]},
    }
    assert diff_reply("cb9 reply", 9, rec, new) == [
        "cb9 reply: PUBACK: 1 -> 0",
        "cb9 reply: [1]: removed (was 0)",
    ]
    assert diff_reply("cb9 reply", 9, rec, MISSING)[0].startswith("cb9 reply: no reply")
    assert "unexpected reply" in diff_reply("cb21 reply", 21, MISSING, rec)[0]
    assert diff_reply("x", 1, MISSING, MISSING) == []
    # a value that changes type is a difference even when it compares equal
    assert diff_json({"a": 1}, {"a": True}) == [("a", 1, True)]
    assert normalize_reply(12, {"packetID": 5, "x": {"time": 3, "y": 1}}) == {"x": {"y": 1}}
