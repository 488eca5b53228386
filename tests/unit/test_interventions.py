"""Interventions without mitmproxy: what it forwards, records and keeps when a gate fails."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest

from proxy.core.events import Data, Event, Side
from proxy.core.filter import Filter
from proxy.core.model import Message, Row
from proxy.core.rules import RuleSet, parse_rule
from proxy.mitm.intervene import Interventions


class RecordingWire:
    """Keeps what it is asked to do (the relay's part, here in memory)."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.sent: list[tuple[str, Side, bytes]] = []
        self.closed: list[str] = []
        self.closing = asyncio.Event()
        self.t = 100.0

    def send(self, conn: str, to: Side, data: bytes, text: bool) -> bool:
        self.sent.append((conn, to, data))
        return True

    def close(self, conn: str) -> None:
        self.closed.append(conn)
        self.closing.set()

    def emit(self, event: Event) -> None:
        self.events.append(event)

    def now(self) -> float:
        return self.t


def _broken(row: Row, msg: Message | None, text: object) -> bool:
    raise RuntimeError("a predicate that fails")


def test_a_failing_rule_leaves_the_direction_forwarding_as_received() -> None:
    rule = parse_rule("cb:20 -> drop")
    rule.match = Filter("cb:20", _broken)
    wire = RecordingWire()
    iv = Interventions(wire, RuleSet([rule]))
    iv.opened("c1", "tcp")
    chunk = b'{"packetID":1,"payload":{"callbackName":20}}\n{"pack'
    assert iv.gated("c1", "app", True)
    assert iv.on_data("c1", "app", chunk, True) == chunk
    assert [e.data for e in wire.events if isinstance(e, Data)] == [chunk]
    # from then on the direction is not gated: the relay forwards chunks itself
    assert not iv.gated("c1", "app", True)


def _state(iv: Interventions) -> tuple[bool, bool]:
    return iv.engaged, iv.gated("c1", "app", True)


def test_without_rules_nothing_is_engaged() -> None:
    iv = Interventions(RecordingWire())
    assert _state(iv) == (False, False)
    iv.set_intercept(Filter.parse("cb:21"))
    assert _state(iv) == (True, True)
    assert not iv.gated("c1", "app", False)  # only between JSON values
    iv.set_intercept(None)
    assert _state(iv) == (False, False)


def _frame(pid: int, cb: int, args: object) -> bytes:
    body = {"packetID": pid, "payload": {"callbackName": cb, "callbackArgs": args}}
    return json.dumps(body, separators=(",", ":")).encode() + b"\n"


def test_rules_loaded_into_an_empty_set_take_effect() -> None:
    """A rules file that started empty: its first good edit engages the relay."""
    rules = RuleSet([])
    iv = Interventions(RecordingWire(), rules)
    assert _state(iv) == (False, False)
    rules.replace([parse_rule("cb:22 -> drop")])
    assert _state(iv) == (True, True)
    rules.toggle(1)  # switched off: nothing is in force any more
    assert _state(iv) == (False, False)


async def test_after_a_close_rule_the_rest_of_the_chunk_is_recorded_as_not_forwarded() -> None:
    wire = RecordingWire()
    iv = Interventions(wire, RuleSet([parse_rule("cb:22 arg.1:60 -> close")]))
    iv.opened("c1", "tcp")
    chunk = _frame(9, 22, [1, 50]) + _frame(10, 22, [1, 60]) + _frame(11, 22, [1, 70])
    assert iv.on_data("c1", "outlet", chunk, True) == _frame(9, 22, [1, 50])
    records = [e for e in wire.events if isinstance(e, Data)]
    assert [e.data for e in records] == [_frame(9, 22, [1, 50]), _frame(10, 22, [1, 60]),
                                         _frame(11, 22, [1, 70])]  # fmt: skip
    marks = [e.intervention for e in records]
    assert marks[0] is None
    assert marks[1] is not None and marks[1].action == "close"
    assert marks[2] is not None and marks[2].action == "drop"
    assert (
        marks[2].why
        == "not forwarded: the connection was closed by rule 1: cb:22 arg.1:60 -> close"
    )
    assert wire.closed == []  # the chunk's forwarding goes first...
    await asyncio.wait_for(wire.closing.wait(), 5)  # ...then the connection closes
    assert wire.closed == ["c1"]


def test_a_rule_that_cannot_act_says_why_once(caplog: pytest.LogCaptureFixture) -> None:
    wire = RecordingWire()
    iv = Interventions(wire, RuleSet([parse_rule("cb:22 -> set payload.nope.x=1")]))
    iv.opened("c1", "tcp")
    with caplog.at_level(logging.WARNING):
        for pid in (1, 2):
            assert iv.on_data("c1", "outlet", _frame(pid, 22, [1, 5]), True) == _frame(
                pid, 22, [1, 5]
            )
    said = [r.getMessage() for r in caplog.records if "did not apply" in r.getMessage()]
    assert len(said) == 1 and "payload.nope.x is not in this message" in said[0]
