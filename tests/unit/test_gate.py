"""The gate: what a gated direction forwards, unit by unit, under each kind of rule."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from proxy.core.events import Side
from proxy.core.filter import Filter
from proxy.core.gate import INJECTED_REPLY_WHY, Decision, Gate, GateContext
from proxy.core.rules import RuleSet, parse_rule


def _msg(pid: int, cb: int | None = None, args: object = None, sn: str | None = None,
         puback: int | None = None) -> bytes:  # fmt: skip
    value: dict[str, object] = {}
    if sn is not None:
        value["sn"] = sn
    value["packetID"] = pid
    if puback is not None:
        value["PUBACK"] = puback
    if cb is not None:
        value["payload"] = {"callbackName": cb, "callbackArgs": args}
    return json.dumps(value, separators=(",", ":")).encode()


def _gate(side: Side, *rules: str, transport: str = "tcp", ctx: GateContext | None = None,
          intercept: str | None = None) -> Gate:  # fmt: skip
    ruleset = RuleSet(parse_rule(r, i) for i, r in enumerate(rules, 1))
    return Gate(
        "c1", side, "tcp" if transport == "tcp" else "ws", ruleset,
        ctx if ctx is not None else GateContext(),
        Filter.parse(intercept) if intercept else None,
    )  # fmt: skip


def _forwarded(decisions: list[Decision]) -> bytes:
    return b"".join(d.out for d in decisions)


def test_reply_puback_0_answers_the_request_with_its_packet_id_and_the_outlets_serial() -> None:
    ctx = GateContext()
    outlet = _gate("outlet", "cb:21 dir:app -> reply puback=0", ctx=ctx)
    app = _gate("app", "cb:21 dir:app -> reply puback=0", ctx=ctx)
    # the outlet's serial is learnt from what it sends
    assert _forwarded(outlet.feed(_msg(1, 12, {}, sn="11A1") + b"\n", 1.0)) == (
        _msg(1, 12, {}, sn="11A1") + b"\n"
    )
    (d,) = app.feed(_msg(414883, 21, [1, 1]) + b"\n", 2.0)
    assert d.kind == "reply" and d.out == b""
    assert d.reply is not None
    assert json.loads(d.reply) == {"sn": "11A1", "packetID": 414883, "PUBACK": 0}
    assert d.reply.endswith(b"\n")
    request = d.record(2.0)
    assert request.data == _msg(414883, 21, [1, 1]) + b"\n" and request.original is None
    assert request.intervention is not None and request.intervention.action == "reply"
    assert request.intervention.rule == "cb:21 dir:app -> reply puback=0"
    answer = d.reply_record(2.0)
    assert answer.side == "outlet" and answer.injected and answer.data == d.reply
    assert answer.intervention is not None and answer.intervention.by == "rule"


def test_drop_of_the_outlets_cb21_leaves_the_rest_of_the_chunk_exact() -> None:
    gate = _gate("outlet", "cb:21 dir:outlet -> drop")
    sync = _msg(7, 21, [1, 1], sn="x")
    push = _msg(8, 22, [1, 30], sn="x")
    decisions = gate.feed(sync + b"\n" + push + b"\n", 1.0)
    assert [d.kind for d in decisions] == ["drop", "forward"]
    assert _forwarded(decisions) == push + b"\n"
    dropped = decisions[0].record(1.0)
    assert dropped.data == sync + b"\n"
    assert dropped.intervention is not None
    assert dropped.intervention.why == "dropped by rule 1: cb:21 dir:outlet -> drop"


def test_progress_from_40_on_is_dropped_and_below_it_forwarded() -> None:
    gate = _gate("outlet", "cb:22 arg.1:40-100 -> drop")
    kinds = [gate.feed(_msg(p, 22, [1, p]), float(p))[0].kind for p in (10, 30, 40, 70, 100)]
    assert kinds == ["forward", "forward", "drop", "drop", "drop"]
    assert gate.rules.rules[0].applied == 3 and gate.rules.rules[0].matched == 3


def test_set_turns_success_into_failure_and_keeps_what_was_received() -> None:
    gate = _gate("outlet", "cb:23 arg.0:1 arg.1:1 -> set payload.callbackArgs.1=0")
    ok = _msg(9, 23, [1, 1], sn="x")
    (d,) = gate.feed(b"  " + ok + b"\r\n", 1.0)
    assert d.kind == "set"
    assert d.out == b"  " + _msg(9, 23, [1, 0], sn="x") + b"\r\n"
    rec = d.record(1.0)
    assert rec.data == d.out and rec.original == b"  " + ok + b"\r\n"
    assert rec.intervention is not None and rec.intervention.action == "set"
    # a failure is not matched: forwarded as it came
    (other,) = gate.feed(_msg(10, 23, [1, 0]), 2.0)
    assert other.kind == "forward" and other.record(2.0).intervention is None


def test_set_on_a_message_without_the_path_forwards_it_unchanged_and_uncounts_the_rule() -> None:
    gate = _gate("outlet", "cb:23 -> set payload.callbackArgs.5=0")
    (d,) = gate.feed(_msg(9, 23, [1, 1]), 1.0)
    assert d.kind == "forward" and d.out == _msg(9, 23, [1, 1])
    assert d.note is not None and "not in this message" in d.note
    assert d.record(1.0).intervention is None
    assert gate.rules.rules[0].applied == 0


def test_delay_and_close_once() -> None:
    gate = _gate("outlet", "cb:22 arg.1:50-100 -> close once", "cb:22 -> delay 5")
    first = gate.feed(_msg(1, 22, [1, 20]), 1.0)[0]
    assert first.kind == "delay" and first.seconds == 5 and first.waits and first.out
    closing = gate.feed(_msg(2, 22, [1, 60]), 2.0)[0]
    assert closing.kind == "close" and closing.out == b""
    # once: the next one at 70 % is only delayed
    assert gate.feed(_msg(3, 22, [1, 70]), 3.0)[0].kind == "delay"


def test_a_frame_split_over_chunks_waits_in_the_gate_until_complete() -> None:
    gate = _gate("app", "cb:99 -> drop")
    whole = _msg(5, 20, None) + b"\n"
    assert gate.feed(whole[:7], 1.0) == []
    assert gate.buffered == 7
    (d,) = gate.feed(whole[7:], 2.0)
    assert d.kind == "forward" and d.out == whole and gate.buffered == 0


def test_garbage_is_forwarded_as_received_at_the_close() -> None:
    gate = _gate("app", "cb:20 -> drop")
    decisions = gate.feed(b"hello there", 1.0)
    decisions += gate.flush(2.0)
    assert _forwarded(decisions) == b"hello there"


def test_intercept_holds_what_it_matches_after_the_rules() -> None:
    gate = _gate("app", "cb:21 -> reply puback=0", intercept="cb:20-21")
    (held,) = gate.feed(_msg(1, 20, None), 1.0)
    assert held.kind == "forward" and held.hold and held.waits
    assert held.record(3.0, held=2.0).intervention == held.intervention(2.0)
    mark = held.intervention(2.0)
    assert mark is not None and (mark.action, mark.by, mark.held) == ("hold", "user", 2.0)
    (replied,) = gate.feed(_msg(2, 21, [1, 1]), 2.0)
    assert replied.kind == "reply" and not replied.hold  # the rule took it: nothing to hold


def test_a_users_edit_is_recorded_as_edit_with_the_original() -> None:
    gate = _gate("app", intercept="cb:20")
    (held,) = gate.feed(_msg(1, 20, None) + b"\n", 1.0)
    rec = held.record(2.0, held=1.0, out=_msg(1, 20, [1]) + b"\n")
    assert rec.data == _msg(1, 20, [1]) + b"\n" and rec.original == _msg(1, 20, None) + b"\n"
    assert rec.intervention is not None and rec.intervention.action == "edit"
    held.drop_by_user()
    dropped = held.record(3.0)
    assert dropped.intervention is not None
    assert (dropped.intervention.action, dropped.intervention.by) == ("drop", "user")


def test_the_reply_to_an_injected_request_is_swallowed() -> None:
    ctx = GateContext()
    ctx.note_injected("c1", _msg(123456, 20, None))
    gate = _gate("outlet", ctx=ctx)
    (d,) = gate.feed(_msg(123456, 20, {}, sn="x", puback=1), 1.0)
    assert d.kind == "drop" and d.by == "user" and d.why == INJECTED_REPLY_WHY
    # the next message with that packetID is not swallowed again
    assert gate.feed(_msg(123456, 20, {}, sn="x", puback=1), 2.0)[0].kind == "forward"


def test_websocket_messages_are_one_unit_each() -> None:
    gate = _gate("outlet", "cb:22 -> drop", transport="ws")
    assert [d.kind for d in gate.feed(_msg(1, 22, [1, 5]), 1.0)] == ["drop"]
    assert gate.feed(b"not json", 2.0)[0].out == b"not json"


@given(
    st.lists(st.sampled_from([_msg(1, 20, None), _msg(2, 9, [1, 1]), b"junk", b"[1,2]", b"7"]),
             max_size=8),
    st.lists(st.sampled_from([b"", b" ", b"\n", b"\r\n", b"\t"]), min_size=9, max_size=9),
    st.lists(st.integers(0, 400), max_size=6),
)  # fmt: skip
def test_with_rules_that_match_nothing_the_bytes_forwarded_equal_the_bytes_received(
    frames: list[bytes], gaps: list[bytes], cuts: list[int]
) -> None:
    stream = b"".join(g + f for g, f in zip(gaps, [*frames, b""], strict=False))
    gate = _gate("app", "cb:99 -> drop", "cb:98 -> set payload.callbackArgs.0=1")
    out = b""
    pos = 0
    for cut in [*sorted({c for c in cuts if 0 < c < len(stream)}), len(stream)]:
        out += _forwarded(gate.feed(stream[pos:cut], 1.0)) if cut > pos else b""
        pos = cut
    out += _forwarded(gate.flush(2.0))
    assert out == stream


def test_a_set_on_a_deeply_nested_message_changes_only_its_path() -> None:
    gate = _gate("outlet", "cb:22 -> set payload.callbackArgs.0=1")
    deep = b"[" * 900 + b"]" * 900
    msg = b'{"packetID":1,"payload":{"callbackName":22,"callbackArgs":[0,' + deep + b"]}}"
    (d,) = gate.feed(msg, 1.0)
    assert d.kind == "set"
    assert d.out == msg.replace(b"[0,", b"[1,")


def test_a_pure_ack_matches_its_requests_callback_as_the_timeline_shows_it() -> None:
    ctx = GateContext()
    app = _gate("app", "cb:21 kind:response -> drop", ctx=ctx)
    outlet = _gate("outlet", "cb:21 kind:response -> drop", ctx=ctx)
    (forwarded,) = app.feed(_msg(414883, 21, [1, 1]), 1.0)
    assert forwarded.kind == "forward"
    (ack,) = outlet.feed(_msg(414883, sn="x", puback=1), 2.0)  # revA: PUBACK, no payload
    assert ack.kind == "drop" and ack.message is not None and ack.message.callback == 21


def test_an_empty_websocket_message_is_forwarded() -> None:
    gate = _gate("app", "cb:99 -> drop", transport="ws")
    (d,) = gate.feed(b"", 1.0)
    assert d.kind == "forward" and d.out == b""
