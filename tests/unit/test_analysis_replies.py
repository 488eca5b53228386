"""Reply matching alone (proxy.core.analysis.replies), without the rest of the analysis."""

from __future__ import annotations

import math

from proxy.core.analysis.replies import Pending, Replies
from proxy.core.events import Close
from tests.unit.analysis_parts import Messages


class Recorder:
    """The requests the replies told the analysis they gave up on."""

    def __init__(self, timeout: float = 30.0) -> None:
        self.unanswered: list[tuple[int, str, Close | None]] = []
        self.replies = Replies(timeout, unanswered=self.gave_up)

    def gave_up(self, pending: Pending, why: str, close: Close | None) -> None:
        self.unanswered.append((pending.msg_id, why, close))


def test_a_reply_on_the_same_connection_and_packet_id_answers_its_request() -> None:
    r, m = Recorder(), Messages()
    assert r.replies.add(m.add(1.0, "c1", "app", 7, 12)) == 31.0
    other = m.add(1.1, "c2", "outlet", 7, 12, {})  # another connection: not the reply
    reply = m.add(1.25, "c1", "outlet", 7, 12, {})
    assert r.replies.match(other) is None
    assert r.replies.match(reply) is m[0]
    assert reply.kind == "response" and other.kind == "push"
    assert r.replies.pending == {}
    assert r.replies.match(m.add(1.3, "c1", "outlet", 7, 12, {})) is None  # answered once


def test_a_reply_naming_another_callback_is_not_the_reply() -> None:
    r, m = Recorder(), Messages()
    r.replies.add(m.add(1.0, "c1", "app", 7, 12))
    assert r.replies.match(m.add(1.1, "c1", "outlet", 7, 20, {})) is None
    assert (("c1", 7)) in r.replies.pending


def test_an_ota_request_is_acknowledged_only_with_a_puback() -> None:
    """Status args without a PUBACK are revB's synchronous status, not the ack."""
    r, m = Recorder(), Messages()
    r.replies.add(m.add(1.0, "c1", "app", 9, 21, [1, 0]))
    assert r.replies.match(m.add(1.1, "c1", "outlet", 9, 21, [1, 1])) is None
    ack = m.add(1.2, "c1", "outlet", 9, PUBACK=1)
    assert r.replies.match(ack) is m[0]
    assert ack.kind == "response" and ack.callback == 21  # a pure ack takes its request's


def test_a_reused_packet_id_gives_up_on_the_first_request() -> None:
    r, m = Recorder(), Messages()
    r.replies.add(m.add(1.0, "c1", "app", 5, 12))
    r.replies.add(m.add(2.0, "c1", "app", 5, 20))
    assert r.unanswered == [(0, "packetID 5 was reused by message 1", None)]
    assert r.replies.pending[("c1", 5)].msg_id == 1


def test_requests_without_a_usable_packet_id_are_not_awaited() -> None:
    r, m = Recorder(), Messages()
    for pid in (None, 1.5, [1]):
        assert r.replies.add(m.add(1.0, "c1", "app", pid, 12)) == math.inf
    assert r.replies.pending == {}


def test_expire_gives_up_on_overdue_requests_and_says_when_the_next_is_due() -> None:
    r, m = Recorder(timeout=10.0), Messages()
    r.replies.add(m.add(1.0, "c1", "app", 1, 12))
    r.replies.add(m.add(2.0, "c1", "app", 2, 12))
    r.replies.add(m.add(3.0, "c1", "app", 3, 12))
    r.replies.match(m.add(3.5, "c1", "outlet", 2, 12, {}))
    assert r.replies.expire(11.0) == (0, 11.0)  # not yet overdue at its deadline
    # #0 is overdue, #1 was answered (no deadline of its own), #2 is due at 13
    assert r.replies.expire(11.5) == (1, 13.0)
    assert r.unanswered == [(0, "no reply within 10 s while traffic went on", None)]
    assert r.replies.expire(20.0) == (1, math.inf)


def test_a_close_gives_up_on_the_requests_of_that_connection_only() -> None:
    r, m = Recorder(), Messages()
    r.replies.add(m.add(1.0, "c1", "app", 1, 12))
    r.replies.add(m.add(1.0, "c2", "app", 1, 12))
    close = Close(2.0, "c1", "outlet")
    r.replies.close(close)
    assert r.unanswered == [(0, "connection c1 closed before a reply came", close)]
    assert list(r.replies.pending) == [("c2", 1)]


def test_drain_gives_up_on_everything_still_waiting_in_order() -> None:
    r, m = Recorder(), Messages()
    for pid in (3, 1, 2):
        r.replies.add(m.add(float(pid), "c1", "app", pid, 12))
    r.replies.match(m.add(4.0, "c1", "outlet", 1, 12, {}))
    r.replies.drain()
    assert [(i, why) for i, why, _ in r.unanswered] == [
        (0, "the capture ended before a reply came"),
        (2, "the capture ended before a reply came"),
    ]
    assert r.replies.pending == {} and not r.replies.order
