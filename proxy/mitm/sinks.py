"""The sink bus: hands every wire event to the sinks, now or in deferred batches.

Forwarding never fails because a consumer did (DESIGN 1.3), so every sink call is
fenced off here. Immediate sinks run before the bytes are forwarded (a capture there
holds every forwarded byte, even after a crash); deferred sinks get the same events in
the same order once traffic pauses, so slow consumers (the analysis, a screen) add
(almost) nothing to the relay's latency.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import ClassVar, Final

from proxy.core.events import Event

Sink = Callable[[Event], object]
"""Receives every wire event, in order, on the event loop thread. Return value ignored."""

DEFER_QUIET: Final = 0.002
"""Deferred sinks run once the relay has had no event for this long (seconds)..."""
DEFER_MAX: Final = 0.05
"""...or once the oldest undelivered event is this old, whichever comes first."""
DRAIN_SLICE: Final = 0.0002
"""A delivery gives the event loop back to the relay after this long, then goes on
(a reply arriving meanwhile waits at most this, plus one event's work)."""


class SinkBus:
    """Immediate ``sinks`` and batched ``deferred_sinks``, each call fenced.

    Deferred delivery starts once traffic pauses for DEFER_QUIET, at the latest
    DEFER_MAX after an event, in slices of DRAIN_SLICE. :meth:`flush` delivers
    everything at once. A failing sink is logged once (to :attr:`sink_log`) and then only
    counted in :attr:`sink_errors`.
    """

    sink_log: ClassVar[logging.Logger] = logging.getLogger(__name__)
    """Where sink failures are reported; an owner may name its own logger."""

    def __init__(self, sinks: Iterable[Sink] = (), deferred_sinks: Iterable[Sink] = ()) -> None:
        self.sinks: list[Sink] = list(sinks)
        self.deferred_sinks: list[Sink] = list(deferred_sinks)
        self.sink_errors = 0
        """How many sink calls raised (each failing sink is logged once)."""
        self._failed_sinks: set[int] = set()
        self._deferred: deque[Event] = deque()
        self._deferred_count = 0  # ever queued: tells the drain timer whether more came
        self._count_at_check = 0
        self._batch_start = 0.0
        self._drain: asyncio.Handle | None = None

    def add_sink(self, sink: Sink) -> None:
        self.sinks.append(sink)

    def remove_sink(self, sink: Sink) -> None:
        self.sinks.remove(sink)

    def _emit(self, event: Event) -> None:
        for sink in self.sinks:
            self._call(sink, event)
        if self.deferred_sinks:
            self._deferred.append(event)
            self._deferred_count += 1
            if self._drain is None:
                loop = asyncio.get_running_loop()
                self._batch_start = loop.time()
                self._count_at_check = self._deferred_count
                self._drain = loop.call_later(DEFER_QUIET, self._drain_when_quiet)

    def _drain_when_quiet(self) -> None:
        """Deliver the batch once no event came for DEFER_QUIET, or it is DEFER_MAX old.

        While messages keep coming, the deferred sinks (analysis, screen) would only sit
        between a request and its reply; their output is not looked at more often than
        that anyway.
        """
        loop = asyncio.get_running_loop()
        waited = loop.time() - self._batch_start
        if self._deferred_count != self._count_at_check and waited < DEFER_MAX:
            self._count_at_check = self._deferred_count
            delay = min(DEFER_QUIET, DEFER_MAX - waited)
            self._drain = loop.call_later(delay, self._drain_when_quiet)
        else:
            self._drain_slice()

    def _drain_slice(self) -> None:
        """Deliver pending events for at most DRAIN_SLICE, then let the loop relay again."""
        deadline = time.perf_counter() + DRAIN_SLICE
        pending = self._deferred
        while pending:
            event = pending.popleft()
            for sink in self.deferred_sinks:
                self._call(sink, event)
            if pending and time.perf_counter() > deadline:
                # call_later(0), not call_soon: the next loop iteration runs the I/O
                # callbacks that are ready (the relaying) before due timers
                self._drain = asyncio.get_running_loop().call_later(0, self._drain_slice)
                return
        self._drain = None

    def flush(self) -> None:
        """Hand every pending event to the deferred sinks now."""
        if self._drain is not None:
            self._drain.cancel()
            self._drain = None
        pending = self._deferred
        while pending:
            event = pending.popleft()
            for sink in self.deferred_sinks:
                self._call(sink, event)

    def _call(self, sink: Sink, event: Event) -> None:
        try:
            sink(event)
        except Exception:
            self.sink_errors += 1
            if id(sink) not in self._failed_sinks:
                self._failed_sinks.add(id(sink))
                self.sink_log.error(
                    "invisproxy: sink %r failed (traffic is still forwarded; "
                    "further failures of this sink are only counted)",
                    sink,
                    exc_info=True,
                )
