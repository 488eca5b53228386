"""The analysis: request/response links, OTA sessions and their annotations.

CONTRACT (implementation in progress). Everything is a deterministic function of the
event stream: ``feed`` the events one at a time (live) or all at once (a file) and the
result is the same. ``advance(now)`` lets wall-clock time pass in a live session (stall
and reply timeouts); ``finish()`` closes a capture (pending requests become unanswered,
open updates stalled or in-progress).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from proxy.events import Event
from proxy.model import Connection, Link, Message, OtaSession, Row

DEFAULT_STALL_WINDOW = 60.0
DEFAULT_REPLY_TIMEOUT = 30.0


class Analysis:
    """Incremental analysis of one capture.

    Public state, append-only except where noted (read it; never mutate it):

    - ``messages``: every decoded message, ``messages[i].id == i``, in time order.
      A message's ``kind``, ``callback``/``name`` (for pure acks) and ``annotations``
      may change after it was added (a reply arriving, a timeout, a stall).
    - ``links``: every Link, in the order they were drawn.
    - ``sessions``: every OtaSession (fields change while the update goes on).
    - ``connections``: conn id -> Connection.
    - ``rows``: the timeline: one Row per message and per connection open/close.
    - ``generation``: bumped on every change, so a view can tell it must repaint.
    """

    def __init__(
        self,
        *,
        stall_window: float = DEFAULT_STALL_WINDOW,
        reply_timeout: float = DEFAULT_REPLY_TIMEOUT,
    ) -> None:
        self.stall_window = stall_window
        self.reply_timeout = reply_timeout
        self.messages: list[Message] = []
        self.links: list[Link] = []
        self.sessions: list[OtaSession] = []
        self.connections: dict[str, Connection] = {}
        self.rows: list[Row] = []
        self.generation = 0
        raise NotImplementedError

    def feed(self, event: Event) -> None:
        """Add one wire event (events must come in non-decreasing ``t``)."""
        raise NotImplementedError

    def feed_all(self, events: Iterable[Event]) -> None:
        for event in events:
            self.feed(event)

    def advance(self, now: float) -> None:
        """Let time pass without traffic (live view): timeouts and stalls."""
        raise NotImplementedError

    def finish(self) -> None:
        """The capture ended: settle what is still open."""
        raise NotImplementedError

    def links_of(self, msg_id: int) -> list[Link]:
        """Every link that starts or ends at this message, in drawing order."""
        raise NotImplementedError

    def session_of(self, msg_id: int) -> OtaSession | None:
        """The OTA session this message belongs to, if any."""
        raise NotImplementedError

    def to_json(self) -> dict[str, Any]:
        """The ``analyze --json`` document (DESIGN 4.4)."""
        raise NotImplementedError


def analyze(events: Iterable[Event], **options: float) -> Analysis:
    """Analyse a finished capture."""
    analysis = Analysis(**options)
    analysis.feed_all(events)
    analysis.finish()
    return analysis
