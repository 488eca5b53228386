"""Helpers for the TUI tests: apps over the scenario traces, and waiting on conditions."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from textual.pilot import Pilot

from proxy.core.events import Event, Side, Transport
from proxy.core.model import Annotation, Kind, Message, Severity
from proxy.store.recording import load_events
from tui.app import InvisApp
from tui.sources import IterSource, Source

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"


def scenario_events(name: str) -> list[Event]:
    loaded = load_events(SCENARIOS / f"{name}.jsonl")
    events = list(loaded.events)
    assert not loaded.problems, loaded.problems
    return events


def build_message(
    id: int,
    *,
    cb: int | None = 21,
    name: str = "Perform OTA update",
    side: Side = "app",
    kind: Kind = "request",
    conn: str = "c1",
    pid: object = 414883,
    transport: Transport = "tcp",
    args: object = None,
    anns: tuple[tuple[str, Severity], ...] = (),
    why: str | None = None,
    raw: bytes = b"{}",
    t: float | None = None,
) -> Message:
    """A decoded message made by hand (a cb21 request unless told otherwise), at ``t`` or
    at ``id`` seconds; each annotation's text is ``why``, or its code."""
    m = Message(
        id, float(id) if t is None else t, conn, transport, side, kind, cb, name, pid, None, None,
        args, raw,
    )  # fmt: skip
    m.annotations = [Annotation(code, sev, why or code) for code, sev in anns]
    return m


def scenario_app(name: str, **options: object) -> InvisApp:
    source = IterSource(scenario_events(name), label=f"{name}.jsonl")
    return InvisApp(source, **options)  # type: ignore[arg-type]


def source_app(source: Source, **options: object) -> InvisApp:
    return InvisApp(source, **options)  # type: ignore[arg-type]


async def wait_until(
    pilot: Pilot[None], condition: Callable[[], bool], timeout: float = 10.0
) -> None:
    """Let the app run until ``condition`` holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await pilot.pause()
    await pilot.pause()


async def loaded(pilot: Pilot[None]) -> InvisApp:
    """Wait until the whole file is analysed and on screen."""
    app = pilot.app
    assert isinstance(app, InvisApp)
    await wait_until(
        pilot,
        lambda: (
            app.feeder.finished
            and app.timeline.view.complete
            and len(app.timeline.view) == len(app.analysis.rows)
        ),
    )
    return app


async def filter_by(pilot: Pilot[None], query: str) -> None:
    """Type ``query`` into the filter bar as a user does (f, the text, Enter), then let the
    timeline finish narrowing to it."""
    app = pilot.app
    assert isinstance(app, InvisApp)
    await pilot.press("f", *query, "enter")
    await wait_until(pilot, lambda: app.timeline.view.complete)


@asynccontextmanager
async def on_screen(
    name: str, size: tuple[int, int] = (80, 24), **options: object
) -> AsyncIterator[tuple[InvisApp, Pilot[None]]]:
    """A scenario's app running at ``size`` with the whole trace on screen: how most tests
    begin."""
    app = scenario_app(name, **options)
    async with app.run_test(size=size) as pilot:
        await loaded(pilot)
        yield app, pilot


def line_texts(app: InvisApp) -> list[str]:
    tl = app.timeline
    return [tl.render_line(y).text for y in range(tl.scrollable_content_region.height)]
