"""Helpers for the TUI tests: apps over the scenario traces, and waiting on conditions."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from textual.pilot import Pilot

from proxy.core.events import Event
from proxy.store.recording import load_events
from tui.app import InvisApp
from tui.sources import IterSource, Source

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"


def scenario_events(name: str) -> list[Event]:
    loaded = load_events(SCENARIOS / f"{name}.jsonl")
    events = list(loaded.events)
    assert not loaded.problems, loaded.problems
    return events


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


def line_texts(app: InvisApp) -> list[str]:
    tl = app.timeline
    return [tl.render_line(y).text for y in range(tl.scrollable_content_region.height)]
