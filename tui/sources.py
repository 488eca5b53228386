"""Where the app's events come from: a live relay, a file, a growing file, or a replay.

Every source pushes :class:`~proxy.core.events.Event` objects into a :class:`Sink` (the feeder)
from the app's own asyncio loop; the app batches them into the analysis and repaints a
few times a second. Sources know nothing about Textual, so they can be driven in tests
with any sink.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Protocol

from proxy.core.events import Event, Side
from proxy.core.filter import Filter
from proxy.core.gate import Decision
from proxy.core.rules import RuleSet


class Sink(Protocol):
    """What a source talks to (the app's :class:`~tui.feeder.Feeder`)."""

    def add_event(self, event: Event) -> None: ...

    def add_events(self, events: Sequence[Event]) -> None: ...

    def set_progress(self, text: str) -> None: ...

    def source_done(self, problems: Sequence[str]) -> None: ...

    def report_problems(self, problems: Sequence[str]) -> None: ...

    async def wait_drained(self) -> None: ...


class HeldMessage(Protocol):
    """A message a live relay holds for the user (``proxy.mitm.intervene.Held``)."""

    id: int
    conn: str
    side: Side
    since: float
    decision: Decision
    """The gate's decision on it; the TUI reads its decoded message."""

    @property
    def text(self) -> str: ...


class Interventions(Protocol):
    """What the TUI asks of the relay's ``proxy.mitm.intervene.Interventions``.

    Spelled out here because the TUI and proxy.mitm are siblings (neither imports the
    other): the CLI hands the relay to the source. Its errors are ValueErrors.
    """

    @property
    def rules(self) -> RuleSet: ...
    @property
    def intercept(self) -> Filter | None: ...
    @property
    def listeners(self) -> list[Callable[[], None]]: ...
    def held(self) -> Sequence[HeldMessage]: ...
    def forward(self, held_id: int, edited: str | bytes | None = None) -> None: ...
    def drop(self, held_id: int) -> None: ...
    def forward_all(self) -> int: ...
    def set_intercept(self, expression: Filter | None) -> None: ...


class Control(Protocol):
    """A live relay the user can intervene in (``proxy.mitm.relay.Relay``)."""

    @property
    def interventions(self) -> Interventions: ...

    def inject(self, conn: str, to: Side, data: bytes, *, text: bool = True) -> None:
        """Send ``data`` on a live connection; raises ValueError when it cannot."""
        ...


class Source:
    """Base class: ``start`` is called once the app runs; ``stop`` when it quits.

    ``streaming`` sources grow while you watch (follow mode makes sense); ``wall_clock``
    sources are timed by the wall clock, so the app lets time pass with
    ``Analysis.advance(time.time())`` for stalls and reply timeouts.
    """

    label = "events"
    streaming = False
    wall_clock = False

    def __init__(self) -> None:
        self._task: asyncio.Task[None] | None = None
        self.sink: Sink | None = None
        self.control: Control | None = None
        """The live relay behind the events, if any (intercept and inject need it)."""

    def start(self, sink: Sink) -> None:
        self.sink = sink
        self._task = asyncio.get_running_loop().create_task(self._run(sink))

    async def _run(self, sink: Sink) -> None:
        return None

    async def stop(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


def _take(iterator: Iterator[Event], count: int) -> list[Event]:
    return list(itertools.islice(iterator, count))


class IterSource(Source):
    """Events from an iterator read in a worker thread (a file being opened).

    The iterator is drained in batches off the UI thread; the app takes each batch in
    as it can, so the first screen appears while the rest still loads.
    """

    BATCH = 5000

    def __init__(
        self,
        events: Iterable[Event],
        *,
        label: str = "events",
        problems: Callable[[], Sequence[object]] | None = None,
        close: Callable[[], None] | None = None,
    ) -> None:
        super().__init__()
        self.label = label
        self._events = iter(events)
        self._problems = problems
        self._close = close
        # A batch read in the worker thread goes on when the app quits (a thread cannot
        # be cancelled); closing the reader under it raised "generator already
        # executing". Whichever of the two comes last closes it.
        self._lock = threading.Lock()
        self._reading = False
        self._closing = False

    def _read_batch(self) -> list[Event]:
        try:
            return _take(self._events, self.BATCH)
        finally:
            with self._lock:
                self._reading = False
                close_now = self._closing
            if close_now:
                self._closed()

    def _closed(self) -> None:
        if self._close is not None:
            self._close()

    def _close_when_idle(self) -> None:
        with self._lock:
            self._closing = True
            reading = self._reading
        if not reading:
            self._closed()

    async def _run(self, sink: Sink) -> None:
        count = 0
        try:
            while True:
                with self._lock:
                    self._reading = True
                batch = await asyncio.to_thread(self._read_batch)
                if not batch:
                    break
                count += len(batch)
                sink.add_events(batch)
                sink.set_progress(f"loading: {count:,} events read")
                await sink.wait_drained()
        except Exception as exc:  # a reader error ends the load; what was read stays
            sink.set_progress("")
            sink.source_done([f"reading stopped: {exc}"])
            return
        finally:
            self._close_when_idle()
        sink.set_progress("")
        problems = [str(p) for p in self._problems()] if self._problems else []
        sink.source_done(problems)


class FileSource(IterSource):
    """A capture or trace opened with ``proxy.store.recording.load_events``."""

    def __init__(self, path: Path) -> None:
        from proxy.store.recording import load_events  # the reader raises UserError for a bad file

        loaded = load_events(path)
        super().__init__(
            loaded.events,
            label=path.name,
            problems=lambda: loaded.problems,
            close=getattr(loaded, "close", None),
        )


class LiveSource(Source):
    """Events pushed by a relay running in the same loop (``invisproxy run``/``demo``).

    Call :meth:`push` from the loop for each event, :meth:`end` when the relay stops.
    Events pushed before the app started are kept and delivered on start.
    """

    streaming = True
    wall_clock = True

    def __init__(self, label: str = "live", control: Control | None = None) -> None:
        super().__init__()
        self.label = label
        self.control = control
        self._early: list[Event] = []
        self._ended = False

    def start(self, sink: Sink) -> None:
        self.sink = sink
        if self._early:
            sink.add_events(self._early)
            self._early = []
        if self._ended:
            sink.source_done([])

    def push(self, event: Event) -> None:
        if self.sink is None:
            self._early.append(event)
        else:
            self.sink.add_event(event)

    def end(self) -> None:
        self._ended = True
        if self.sink is not None:
            self.sink.source_done([])


class FollowSource(Source):
    """A capture another process is still writing, polled with ``CaptureFollower``."""

    streaming = True
    wall_clock = True

    MAX_POLL = 4 << 20  # bytes read per poll, so a long backlog arrives in slices

    def __init__(self, path: Path, interval: float = 0.25) -> None:
        super().__init__()
        from proxy.store.capture import CaptureFollower

        self.label = f"{path.name} (following)"
        self.interval = interval
        self.follower = CaptureFollower(path)

    async def _run(self, sink: Sink) -> None:
        total = 0
        reported = 0
        try:
            while True:
                events = await asyncio.to_thread(self.follower.poll, self.MAX_POLL)
                problems = self.follower.problems
                if len(problems) > reported:
                    sink.report_problems([str(p) for p in problems[reported:]])
                    reported = len(problems)
                if events:
                    total += len(events)
                    sink.add_events(events)
                    sink.set_progress(f"following: {total:,} events")
                    await sink.wait_drained()
                else:
                    await asyncio.sleep(self.interval)  # polling period, not synchronisation
        finally:
            self.follower.close()


class PlaySource(Source):
    """Plays recorded events at their recorded pace (divided by ``speed``).

    Pause, step and speed are controlled from the app; a wake-up event cuts a wait
    short when the user changes something, so controls act at once.
    """

    streaming = True
    SPEEDS = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0)

    def __init__(self, events: Sequence[Event], *, speed: float = 1.0, label: str = "") -> None:
        super().__init__()
        self.events = events
        self.label = label or "play"
        self.speed = speed
        self.paused = False
        self.position = 0
        self._wake = asyncio.Event()
        self._steps = 0

    @classmethod
    def from_file(cls, path: Path, *, speed: float = 1.0) -> PlaySource:
        from proxy.store.recording import load_events

        loaded = load_events(path)
        return cls(list(loaded.events), speed=speed, label=f"{path.name} (playing)")

    def toggle_pause(self) -> None:
        self.paused = not self.paused
        self._wake.set()

    def step(self) -> None:
        """Deliver the next event now (and stay paused)."""
        self.paused = True
        self._steps += 1
        self._wake.set()

    def faster(self) -> None:
        self.speed = next((s for s in self.SPEEDS if s > self.speed), self.speed)
        self._wake.set()

    def slower(self) -> None:
        self.speed = next((s for s in reversed(self.SPEEDS) if s < self.speed), self.speed)
        self._wake.set()

    @property
    def done(self) -> bool:
        return self.position >= len(self.events)

    def status(self) -> str:
        state = "paused" if self.paused else "playing"
        return f"{state} ×{self.speed:g} · {self.position:,}/{len(self.events):,} events"

    async def _wait(self, timeout: float | None) -> bool:
        """Wait for a control change or the timeout; True when woken by a control."""
        self._wake.clear()
        try:
            await asyncio.wait_for(self._wake.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def _run(self, sink: Sink) -> None:
        events = self.events
        due = time.monotonic()
        while self.position < len(events):
            event = events[self.position]
            if self.paused:
                if self._steps:
                    self._steps -= 1
                else:
                    sink.set_progress(self.status())
                    await self._wait(None)
                    due = time.monotonic()
                    continue
            elif self.position:
                gap = max(event.t - events[self.position - 1].t, 0.0) / self.speed
                wait = due + gap - time.monotonic()
                if wait > 0 and await self._wait(wait):
                    continue  # a control changed: recompute the wait
                due = max(due + gap, time.monotonic() - 1.0)
            sink.add_event(event)
            self.position += 1
            sink.set_progress(self.status())
        sink.set_progress(f"played {len(events):,} events")
        sink.source_done([])
