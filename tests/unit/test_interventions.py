"""Interventions without mitmproxy: what it forwards, records and keeps when a gate fails."""

from __future__ import annotations

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
        self.t = 100.0

    def send(self, conn: str, to: Side, data: bytes, text: bool) -> bool:
        self.sent.append((conn, to, data))
        return True

    def close(self, conn: str) -> None:
        raise AssertionError("nothing closes here")

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
