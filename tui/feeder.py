"""Feeds a source's events to the analysis in slices of bounded time (no Textual here).

A source hands events over as fast as it reads them; the analysis of a big capture takes
seconds. The feeder queues them and analyses in slices, yielding to the event loop
between slices: long slices while nobody types (a big file loads at nearly the
analysis' own speed), short ones while keys arrive (the keyboard stays quick). It is the
:class:`~tui.sources.Sink` sources talk to, and it owns the GC policy of a load.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, NamedTuple

from proxy.core.analysis import gc_paused

if TYPE_CHECKING:
    from proxy.core.analysis import Analysis
    from proxy.core.events import Event

FEED_SLICE = 0.050  # seconds of analysis between yields to the loop while nobody types
FEED_SLICE_TYPING = 0.008  # ... while the user presses keys: a key waits at most this
TYPING_GRACE = 0.75  # seconds after the last key or click that count as typing
FEED_PAUSE = 0.001  # the loop's turn between slices
DRAINED = 50_000  # a file source reads ahead at most this many events
BIG_BACKLOG = 10_000  # events: from here a file load freezes what it analysed for the GC
SLICE_LOG = 4096  # slices remembered in ``Feeder.slices``


class Slice(NamedTuple):
    """One slice of analysis, for people (and tests) who want to see the pacing."""

    start: float  # time.perf_counter()
    budget: float  # seconds it was allowed
    typing: bool  # whether the user counted as typing then
    events: int  # how many events it analysed


class Feeder:
    """The backlog between a source and the analysis.

    ``streaming``: the source grows while you watch (live, follow), so what was analysed
    is not frozen for the GC. ``on_problems`` shows what was wrong with the input.
    """

    def __init__(
        self,
        analysis: Analysis,
        *,
        streaming: bool,
        on_problems: Callable[[Sequence[str]], None] = lambda problems: None,
    ) -> None:
        self.analysis = analysis
        self.streaming = streaming
        self.on_problems = on_problems
        self.progress = ""  # what the source says of its reading
        self.problems: list[str] = []
        self.source_ended = False
        self.finished = False  # the source ended and all of it is analysed
        self.loaded = asyncio.Event()  # set when ``finished`` becomes true
        self.slices: deque[Slice] = deque(maxlen=SLICE_LOG)
        self.last_input = -TYPING_GRACE  # perf_counter() of the last key or click
        self._pending: list[Event] = []
        self._pending_pos = 0
        self._has_pending = asyncio.Event()
        self._drained = asyncio.Event()
        self._drained.set()
        self._load_started: float | None = None  # when the current backlog began
        self._load_base = 0  # messages analysed before it

    # -- the sink a source talks to -------------------------------------------------

    def add_event(self, event: Event) -> None:
        """Queue one event; safe to call from the loop at any rate."""
        self._pending.append(event)
        self._check_backlog()

    def add_events(self, events: Sequence[Event]) -> None:
        self._pending.extend(events)
        self._check_backlog()

    def set_progress(self, text: str) -> None:
        self.progress = text

    def source_done(self, problems: Sequence[str]) -> None:
        self.source_ended = True
        self.report_problems(problems)

    def report_problems(self, problems: Sequence[str]) -> None:
        """Say what was wrong with the input; what could be read is still shown."""
        if problems:
            self.problems += problems
            self.on_problems(problems)

    async def wait_drained(self) -> None:
        await self._drained.wait()

    # -- state ------------------------------------------------------------------------

    @property
    def backlog(self) -> int:
        """Events received and not analysed yet."""
        return len(self._pending) - self._pending_pos

    @property
    def typing(self) -> bool:
        return time.perf_counter() - self.last_input < TYPING_GRACE

    def note_input(self) -> None:
        """A key or click arrived: slices stay short for a while."""
        self.last_input = time.perf_counter()

    def rate(self) -> str:
        """How fast the analysis takes in the current backlog, while one waits."""
        started = self._load_started
        if started is None or not self.backlog:
            return ""
        elapsed = time.perf_counter() - started
        done = len(self.analysis.messages) - self._load_base
        if elapsed < 0.5 or done <= 0:
            return ""
        return f" · {done / elapsed:,.0f} msgs/s"

    def finish_if_done(self) -> bool:
        """Close the analysis once the source ended and all is fed; True when it did."""
        if self.finished or not self.source_ended or self.backlog:
            return False
        self.finished = True
        self.analysis.finish()
        if not self.streaming:
            # A loaded capture is millions of long-lived objects: keep the cyclic GC
            # from walking them on every full collection (which stalls key presses).
            gc.freeze()
        self.loaded.set()
        return True

    # -- feeding ----------------------------------------------------------------------

    async def run(self, filling: Callable[[], bool], after_slice: Callable[[bool], None]) -> None:
        """Feed the backlog for ever. ``filling`` says the first screen is not full yet
        (short slices, and ``after_slice(True)`` paints without waiting for a tick)."""
        while True:
            await self._has_pending.wait()
            while self.backlog:
                typing = self.typing
                first_screen = filling()
                self.feed(FEED_SLICE_TYPING if typing or first_screen else FEED_SLICE, typing)
                after_slice(first_screen)
                # Not sleep(0): that lets each waiting task take one step, and a key
                # press is a chain of steps (driver -> app -> screen -> widget ->
                # repaint timer). A short sleep lets the loop run everything ready,
                # chains included, before the next slice.
                await asyncio.sleep(FEED_PAUSE)
            self._has_pending.clear()
            if self.source_ended or self.streaming:
                self._load_started = None

    def feed(self, budget: float, typing: bool = False) -> None:
        """Analyse queued events for about ``budget`` seconds."""
        pending = self._pending
        start = time.perf_counter()
        deadline = start + budget
        feed = self.analysis.feed
        i = first = self._pending_pos
        end = len(pending)
        # The analysis allocates many long-lived objects and no cycles: the cyclic GC
        # would walk them all again and again while a big file loads.
        with gc_paused():
            while i < end:
                stop = min(end, i + 256)
                for event in pending[i:stop]:
                    feed(event)
                i = stop
                if time.perf_counter() > deadline:
                    break
        self.slices.append(Slice(start, budget, typing, i - first))
        if end - first > BIG_BACKLOG and not self.streaming:
            gc.freeze()  # loading a file: what was analysed stays for good
        if i >= len(pending):
            pending.clear()
            self._pending_pos = 0
        else:
            self._pending_pos = i
        if self.backlog <= DRAINED:
            self._drained.set()

    def _check_backlog(self) -> None:
        if not self._has_pending.is_set():
            self._has_pending.set()
            if self._load_started is None:
                self._load_started = time.perf_counter()
                self._load_base = len(self.analysis.messages)
        if self.backlog > DRAINED:
            self._drained.clear()
