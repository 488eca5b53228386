"""Benchmark: the TUI on a generated 1,000,000-message capture.

    .venv/bin/python tests/bench/bench_tui.py [--messages N] [--presses N]

Opens the capture with the same FileSource ``invisproxy view`` uses, headless at
160x50, and measures:

- first screen: from starting the app to a full timeline screen painted (the rest of the
  file still loading);
- full load: until every event is analysed and the timeline holds every row;
- key response while loading and after: PageDown / Down presses, each timed from the
  key press to the repaint being done (``pilot.press`` waits for the app to go idle);
- a cold repaint: rendering every visible line with an empty line cache.

The baseline is the same key presses on a 1,000-message capture in the same run, so the
ratio shows whether the cost depends on the capture size (it should not). Targets (the
TUI issue): first screen <= 2 s, key response <= 50 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from textual import events

from proxy.store.capture import write_capture
from tests.bench.bench_analysis import generate
from tui.app import InvisApp
from tui.sources import FileSource

SIZE = (160, 50)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(q * len(ordered)), len(ordered) - 1)]


class PaintClock:
    """Records when the screen last pushed an update, and where the cursor was then."""

    def __init__(self, app: InvisApp) -> None:
        self.last = 0.0
        self.state: tuple[int, bool] = (-1, False)
        screen = app.screen
        original = screen._compositor_refresh
        tl = app.timeline

        def timed() -> None:
            original()
            self.last = time.perf_counter()
            self.state = (tl.cursor, tl.following)

        screen._compositor_refresh = timed  # type: ignore[method-assign]


async def press_times(app: InvisApp, clock: PaintClock, keys: list[str]) -> list[float]:
    """Key event posted -> the first paint showing the moved cursor, in the app's loop.

    (``pilot.press`` is not used for timing: it also waits for the process to look idle,
    which never happens while a file loads.)
    """
    times = []
    tl = app.timeline
    for key in keys:
        if tl.cursor + tl.scrollable_content_region.height >= len(tl.view) - 1:
            # near the end a key would not move: start again from the top (untimed)
            start = time.perf_counter()
            tl.move_to(0)
            while (clock.last < start or clock.state[0] != 0) and time.perf_counter() - start < 5:
                await asyncio.sleep(0.0005)
        before = (tl.cursor, tl.following)
        start = time.perf_counter()
        app.post_message(events.Key(key, None))
        while (clock.last < start or clock.state == before) and time.perf_counter() - start < 5:
            await asyncio.sleep(0.0005)
        times.append(clock.last - start)
    return times


async def measure(path: Path, presses: int) -> dict[str, float]:
    app = InvisApp(FileSource(path))
    figures: dict[str, float] = {}
    start = time.perf_counter()
    async with app.run_test(size=SIZE) as pilot:
        tl = app.timeline
        clock = PaintClock(app)
        # Polled with short sleeps, not pilot.pause(): that waits for the process to
        # look idle, up to a second at a time while a file loads.
        height = SIZE[1] - 20
        while len(tl.view) < height and not app.feeder.finished:
            await asyncio.sleep(0.002)
        filled = time.perf_counter()
        while clock.last < filled:  # the paint that shows it
            await asyncio.sleep(0.002)
        figures["first_screen_s"] = clock.last - start
        loading = []
        if not app.feeder.finished:
            keys = ["pagedown", "down"] * (presses // 2)
            loading = await press_times(app, clock, keys[: max(presses // 4, 2)])
        while not (
            app.feeder.finished and tl.view.complete and len(tl.view) == len(app.analysis.rows)
        ):
            await asyncio.sleep(0.005)
        figures["full_load_s"] = time.perf_counter() - start
        figures["rows"] = float(len(app.analysis.rows))
        await pilot.press("home")
        keys = ["pagedown"] * (presses // 2) + ["down"] * (presses // 2)
        after = await press_times(app, clock, keys)
        figures["key_median_ms"] = statistics.median(after) * 1000
        figures["key_p95_ms"] = pct(after, 0.95) * 1000
        figures["key_max_ms"] = max(after) * 1000
        if loading:
            figures["key_while_loading_median_ms"] = statistics.median(loading) * 1000
            figures["key_while_loading_p95_ms"] = pct(loading, 0.95) * 1000
        await pilot.press("end")
        tl.clear_caches()
        t0 = time.perf_counter()
        for y in range(tl.scrollable_content_region.height):
            tl.render_line(y)
        figures["cold_repaint_ms"] = (time.perf_counter() - t0) * 1000
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--presses", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        small = Path(tmp) / "small.invcap"
        big = Path(tmp) / "big.invcap"
        t0 = time.perf_counter()
        write_capture(small, {"title": "bench small"}, generate(1_000))
        write_capture(big, {"title": "bench big"}, generate(args.messages))
        print(f"generated captures in {time.perf_counter() - t0:.1f} s")
        base = asyncio.run(measure(small, args.presses))
        big_figures = asyncio.run(measure(big, args.presses))
    print(f"{'figure':32} {'1k baseline':>12} {f'{args.messages:,} msgs':>14} {'ratio':>7}")
    for key, value in big_figures.items():
        b = base.get(key)
        ratio = f"{value / b:7.2f}" if b else "      -"
        b_text = f"{b:12.2f}" if b is not None else " " * 12
        print(f"{key:32} {b_text} {value:14.2f} {ratio}")
    ok_first = big_figures["first_screen_s"] <= 2.0
    ok_key = big_figures["key_p95_ms"] <= 50.0
    print(f"target first screen <= 2 s: {'met' if ok_first else 'MISSED'}")
    print(f"target key response (p95) <= 50 ms: {'met' if ok_key else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
