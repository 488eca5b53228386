"""Reply matching: requests waiting for their reply, and the deadlines they time out at.

A reply belongs to the request on the same connection with the same packetID (and, when
it names one, the same callback). Standalone: it is given the callable that reports an
unanswered request, and returns the request a reply answers; the analysis draws the
link, in its per-message loop (a call less per reply than a callback from here).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from proxy.core import protocol
from proxy.core.events import Close
from proxy.core.model import Message


@dataclass(slots=True)
class Pending:
    """A request waiting for its reply."""

    msg_id: int
    t: float
    conn: str
    key: tuple[str, Any]
    request: Message


Unanswered = Callable[[Pending, str, Close | None], None]


class Replies:
    """Pending requests by (connection, packetID), oldest first for the timeouts.

    ``pending`` is the live table (read it; a bounded analysis keeps those requests);
    ``order`` may still hold answered ones, dropped lazily so that answering costs one
    dict deletion.
    """

    __slots__ = ("_unanswered", "order", "pending", "reply_timeout")

    def __init__(self, reply_timeout: float, *, unanswered: Unanswered) -> None:
        self.reply_timeout = reply_timeout
        self.pending: dict[tuple[str, Any], Pending] = {}
        self.order: deque[Pending] = deque()
        self._unanswered = unanswered

    def add(self, msg: Message) -> float:
        """Wait for a reply to this app message; the time it times out (inf: not awaited,
        it has no usable packetID). A packetID reused on the connection gives up on the
        request that had it."""
        pid = msg.packet_id
        if pid is None or not isinstance(pid, (int, str)):
            return math.inf
        key = (msg.conn, pid)
        pending = Pending(msg.id, msg.t, msg.conn, key, msg)
        waiting = self.pending
        previous = waiting.get(key)
        if previous is not None:
            self._unanswered(previous, f"packetID {pid} was reused by message {msg.id}", None)
        waiting[key] = pending
        order = self.order
        while order and waiting.get(order[0].key) is not order[0]:
            order.popleft()  # answered (as in expire): do not keep them for a whole timeout
        order.append(pending)
        return msg.t + self.reply_timeout

    def match(self, msg: Message) -> Message | None:
        """The request this outlet message answers, if any: it becomes its response (the
        caller links them, or hands an OTA request's acknowledgement to the OTA tracking)."""
        pid = msg.packet_id
        if pid is None or not isinstance(pid, (int, str)):
            return None
        pending = self.pending.get((msg.conn, pid))
        if pending is None:
            return None
        request = pending.request
        if msg.callback is not None and msg.callback != request.callback:
            return None
        if request.callback == 21 and msg.args is not None and msg.puback is None:
            # Status args without a PUBACK: the revB synchronous form, not the ack (which
            # is still missing). With a PUBACK it is the ack, whatever payload it carries.
            return None
        del self.pending[pending.key]
        msg.kind = "response"
        protocol.adopt_request(msg, request)
        return request

    def expire(self, now: float) -> tuple[int, float]:
        """Give up on the requests whose reply is overdue at ``now``: how many there were,
        and when the next one is due (inf: none waits)."""
        order = self.order
        waiting = self.pending
        expired = 0
        while order:
            pending = order[0]
            if waiting.get(pending.key) is not pending:
                order.popleft()  # answered: forgotten here, so the deadline is a live one
            elif pending.t + self.reply_timeout < now:
                order.popleft()
                del waiting[pending.key]
                self._unanswered(
                    pending, f"no reply within {self.reply_timeout:g} s while traffic went on", None
                )
                expired += 1
            else:
                break
        return expired, (order[0].t + self.reply_timeout if order else math.inf)

    def close(self, event: Close) -> None:
        """Requests pending on a closed connection can no longer be answered."""
        conn = event.conn
        for key in [k for k in self.pending if k[0] == conn]:
            pending = self.pending.pop(key)
            self._unanswered(pending, f"connection {conn} closed before a reply came", event)

    def drain(self) -> None:
        """The capture ended: every request still waiting is unanswered."""
        waiting = self.pending
        for pending in list(self.order):
            if waiting.get(pending.key) is pending:
                self._unanswered(pending, "the capture ended before a reply came", None)
        waiting.clear()
        self.order.clear()
