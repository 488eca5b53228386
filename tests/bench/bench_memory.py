"""Benchmark: resident memory of a long-running headless proxy, against a full history.

    .venv/bin/python tests/bench/bench_memory.py [--messages N] [--baseline N] [--relay N]
        [--tui N]

Each phase runs in a fresh process (so RSS is its own) and samples VmRSS from
/proc/self/status as it goes:

- analysis: N messages (default 1,000,000) of generated traffic (tests/bench/
  bench_analysis.py: sensor pushes, request/reply pairs, split and merged chunks, OTA
  updates, a connection per 2,000 rounds) fed one event at a time to the analysis
  ``run --headless`` uses, printed by its HeadlessPrinter to /dev/null; no sockets.
  RSS every 100,000 messages.
- analysis-full: the same with a plain Analysis (the full history the TUI and
  ``analyze`` keep), for a smaller N: the baseline, and its cost per message.
- relay / relay-full: round trips through the real Relay (raw TCP, an outlet in a
  helper process, as bench_relay.py) with the analysis before forwarding and the
  printer after it, as ``run --headless`` wires them; one connection per 2,000
  round trips, RSS after each. The relay floods (the whole run fits in the default
  60 s stall window, which the bounded analysis holds), so it runs with the defaults
  and with a 2 s stall window and reply timeout, where the plateau shows.
- tui: a generated capture of N messages opened in the TUI (InvisApp on a FileSource,
  headless at 160x50, as ``invisproxy view``) until every row is loaded; RSS then, for
  a small and a large capture: the TUI's cost per message.
- big value: after each analysis phase, a 20 MB value on a connection that closes:
  RSS before, once it was printed, and after its close was printed and the clock
  passed the stall window.

Prints each series, the ratio of the final RSS to the first sample and to the middle
one, and the growth per message over the second half (past the warm-up: the bounded
analysis holds the last stall window of traffic, filled in the first seconds of a
flood).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench_analysis import generate
from bench_relay import Peer

from proxy.core.analysis import Analysis
from proxy.core.events import Close, Data, Open
from proxy.core.retention import BoundedAnalysis
from proxy.mitm.live import HeadlessPrinter
from proxy.mitm.relay import Relay

MB = 1 << 20


def rss() -> int:
    """Resident set size in bytes (VmRSS)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def make(bounded: bool, window: float | None = None) -> Analysis:
    """The analysis, with the stall window and reply timeout ``window`` if given."""
    options = {} if window is None else {"stall_window": window, "reply_timeout": window}
    return BoundedAnalysis(**options) if bounded else Analysis(**options)


def analysis_phase(n: int, bounded: bool, every: int) -> dict[str, Any]:
    analysis = make(bounded)
    printer = HeadlessPrinter(analysis)
    samples = [(0, rss())]
    next_sample = every
    t0 = time.perf_counter()
    with open("/dev/null", "w") as null, contextlib.redirect_stdout(null):
        for event in generate(n):
            analysis.feed(event)
            printer(event)
            if len(analysis.messages) >= next_sample:
                samples.append((len(analysis.messages), rss()))
                next_sample += every
        printer.flush()
        seconds = time.perf_counter() - t0
        result: dict[str, Any] = {"samples": samples, "seconds": seconds}
        if isinstance(analysis, BoundedAnalysis):
            result["held"] = analysis.retained_messages()
        result["big"] = big_value(analysis, printer)
        result["messages"] = len(analysis.messages)
        result["sessions"] = len(analysis.sessions)
    return result


def big_value(analysis: Analysis, printer: HeadlessPrinter) -> dict[str, int]:
    """A 20 MB value on a connection that closes: RSS before, with it, after."""
    gc.collect()
    before = rss()
    t = (analysis.last_t or 0.0) + 1
    value = b'{"sn":"x","packetID":5,"payload":{"callbackName":4,"callbackArgs":["'
    value += b"a" * (20 * MB) + b'"]}}\n'
    analysis.feed(Open(t, "big", "tcp", "127.0.0.1:5001", "10.0.0.5:3333"))
    analysis.feed(Data(t + 0.1, "big", "outlet", value))
    del value
    printer.flush()
    held = rss()
    analysis.feed(Close(t + 0.2, "big", "outlet"))
    analysis.advance(t + 100)  # `run` ticks the clock each second: past the 60 s look back
    printer.flush()
    gc.collect()
    after = rss()
    retained = analysis.retained_bytes() if isinstance(analysis, BoundedAnalysis) else -1
    return {"before": before, "held": held, "after": after, "retained_bytes": retained}


async def relay_phase(
    pairs: int, bounded: bool, per_conn: int, window: float | None
) -> dict[str, Any]:
    peer = await Peer.start()
    analysis = make(bounded, window)
    printer = HeadlessPrinter(analysis)
    samples: list[tuple[int, int]] = []
    with (
        tempfile.TemporaryDirectory() as tmp,
        open("/dev/null", "w") as null,
        contextlib.redirect_stdout(null),
    ):
        relay = Relay(
            "127.0.0.1",
            outlet_tcp_port=peer.tcp_port,
            ws_port=None,
            tcp_port=0,
            sinks=[analysis.feed],  # as proxy/live.py: the analysis before forwarding
            deferred_sinks=[printer],  # and the printer once traffic pauses
            confdir=str(Path(tmp) / "conf"),
        )
        await relay.start()
        assert relay.tcp_address is not None
        port = relay.tcp_address[1]
        t0 = time.perf_counter()
        try:
            await peer.ping("tcp", port, 100)  # warm-up
            samples.append((len(analysis.messages), rss()))
            done = 0
            while done < pairs:
                batch = min(per_conn, pairs - done)
                await peer.ping("tcp", port, batch)
                done += batch
                relay.addon.flush()
                samples.append((len(analysis.messages), rss()))
        finally:
            await relay.stop()
            await peer.stop()
        seconds = time.perf_counter() - t0
    result: dict[str, Any] = {"samples": samples, "seconds": seconds}
    result["messages"] = len(analysis.messages)
    if isinstance(analysis, BoundedAnalysis):
        result["held"] = analysis.retained_messages()
    return result


async def tui_phase(n: int) -> dict[str, Any]:
    from proxy.store.capture import write_capture
    from tui.app import InvisApp
    from tui.sources import FileSource

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.invcap"
        write_capture(path, {"title": "bench memory"}, generate(n))
        gc.collect()
        before = rss()
        t0 = time.perf_counter()
        app = InvisApp(FileSource(path))
        async with app.run_test(size=(160, 50)):
            tl = app.timeline
            while not (
                app._finished and tl.view.complete and len(tl.view) == len(app.analysis.rows)
            ):
                await asyncio.sleep(0.01)  # polling the load, as bench_tui.py does
            gc.collect()
            loaded = rss()
            messages = len(app.analysis.messages)
        seconds = time.perf_counter() - t0
    return {"samples": [(0, before), (messages, loaded)], "seconds": seconds, "messages": messages}


def child(phase: str, n: int) -> None:
    bounded = "-full" not in phase
    if phase == "tui":
        result = asyncio.run(tui_phase(n))
    elif phase.startswith("analysis"):
        result = analysis_phase(n, bounded, every=100_000 if n >= 200_000 else max(n // 10, 1))
    else:
        window = float(phase.split(":")[1]) if ":" in phase else None
        result = asyncio.run(relay_phase(n, bounded, 2_000, window))
    print(json.dumps(result))


def run_child(phase: str, n: int) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", phase, str(n)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def report(name: str, result: dict[str, Any]) -> float:
    """Print a series; returns bytes per message over its second half."""
    samples = result["samples"]
    print(f"\n{name}: {result['messages']:,} messages in {result['seconds']:.1f} s")
    for count, size in samples:
        print(f"  {count:>9,} messages  RSS {size / MB:8.1f} MB")
    (n0, r0), (n1, r1) = samples[1], samples[-1]
    # the second half: past the warm-up (the bounded analysis' look back filling)
    nh, rh = samples[len(samples) // 2]
    per = (r1 - rh) / max(n1 - nh, 1)
    print(
        f"  final / first sample ({n0:,} messages): {r1 / r0:.3f}; final / middle sample "
        f"({nh:,} messages): {r1 / rh:.3f}, growth {per:.1f} bytes per message from there"
    )
    if "held" in result:
        print(f"  messages still held at the end: {result['held']:,}")
    if "sessions" in result:
        print(f"  OTA updates held at the end (the summary lists them): {result['sessions']:,}")
    return per


def main(messages: int, baseline: int, relay: int, tui: int) -> int:
    print(f"VmRSS sampled in a fresh process per phase; python {sys.version.split()[0]}")
    bounded = run_child("analysis", messages)
    full = run_child("analysis-full", baseline)
    per_bounded = report("analysis, bounded (run --headless)", bounded)
    per_full = report("analysis-full, full history (TUI, analyze): baseline", full)
    for name, result in (("bounded", bounded), ("full history", full)):
        big = result["big"]
        print(
            f"\n20 MB value, {name}: RSS {big['before'] / MB:.1f} MB before, "
            f"{big['held'] / MB:.1f} MB once printed, {big['after'] / MB:.1f} MB after its "
            f"close was printed and 100 s passed"
            + (f"; raw bytes still held: {big['retained_bytes']}" if name == "bounded" else "")
        )
    big = bounded["big"]
    ok = big["after"] - big["before"] < 5 * MB and per_bounded < 0.05 * per_full
    if relay:
        # The relay floods (thousands of messages a second, the whole run inside one
        # 60 s stall window, which the bounded analysis holds): with 2 s windows the
        # same run shows the plateau; with the defaults it is printed too.
        r_default = run_child("relay", relay)
        report("relay, bounded, default 60 s stall window", r_default)
        r_bounded = run_child("relay:2", relay)
        r_full = run_child("relay-full:2", relay)
        per_relay = report("relay, bounded, 2 s stall window and reply timeout", r_bounded)
        per_relay_full = report("relay-full, full history, 2 s windows: baseline", r_full)
        print(
            f"  relay growth per message: bounded {per_relay:.1f} B, full history "
            f"{per_relay_full:.1f} B (ratio {per_relay / per_relay_full:.3f})"
        )
        ok &= per_relay < 0.05 * per_relay_full
    if tui:
        small, large = run_child("tui", tui // 10), run_child("tui", tui)
        (_, s0), (n_small, s1) = small["samples"]
        (_, l0), (n_large, l1) = large["samples"]
        per_tui = ((l1 - l0) - (s1 - s0)) / (n_large - n_small)
        print(
            f"\ntui: RSS grew {(s1 - s0) / MB:.1f} MB loading {n_small:,} messages "
            f"({small['seconds']:.1f} s), {(l1 - l0) / MB:.1f} MB loading {n_large:,} "
            f"({large['seconds']:.1f} s): {per_tui:.0f} bytes per message"
        )
    print(
        f"\ngrowth per message: bounded {per_bounded:.1f} B, full history {per_full:.1f} B "
        f"(ratio {per_bounded / per_full:.3f})"
    )
    print("ok" if ok else "OVER TARGET: memory is not flat")
    return 0 if ok else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--baseline", type=int, default=200_000)
    parser.add_argument("--relay", type=int, default=50_000, help="round trips (0: skip)")
    parser.add_argument("--tui", type=int, default=200_000, help="messages (0: skip)")
    parser.add_argument("--child", nargs=2, metavar=("PHASE", "N"), help=argparse.SUPPRESS)
    opts = parser.parse_args()
    if opts.child:
        child(opts.child[0], int(opts.child[1]))
    else:
        sys.exit(main(opts.messages, opts.baseline, opts.relay, opts.tui))
