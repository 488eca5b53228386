"""Benchmark: analysis throughput on a generated 1,000,000-message capture.

    .venv/bin/python tests/bench/bench_analysis.py [--messages N] [--keep]

Generates a capture of realistic traffic (sensor pushes, request/reply pairs, merged
and split TCP chunks, a few OTA updates), then measures, each in a fresh process so
peak memory (max RSS) is per phase:

- baseline: reading the capture and ``json.loads`` of every chunk;
- read: reading the capture into events;
- framing: reading + the streaming splitter;
- analysis: reading + framing + decoding + correlation (the whole pipeline);
- live: ``Analysis.feed`` one event at a time with the GC on, as the relay's deferred
  sink does (the first 200,000 events, read beforehand and not timed).

Prints messages/s, seconds, peak RSS and ratios to the baseline, then each stage's
own share (differences of the phases above). Targets (issue 2): >= 200,000
messages/s, the 1M capture analysed in <= 5 s, peak memory <= 1 GiB.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from proxy.core.events import Close, Data, Event, Open
from proxy.store.capture import CaptureWriter

SN = "11B27540076"


def obj(pid: int, cb: int, args: object = None, puback: int | None = None) -> bytes:
    o: dict[str, object] = {"sn": SN, "packetID": pid}
    if puback is not None:
        o["PUBACK"] = puback
    payload: dict[str, object] = {"callbackName": cb}
    if args is not None:
        payload["callbackArgs"] = args
    o["payload"] = payload
    return json.dumps(o, separators=(",", ":")).encode() + b"\n"


def generate(n_messages: int, seed: int = 1) -> Iterator[Event]:
    """Realistic traffic: about n_messages decoded messages."""
    rng = random.Random(seed)
    t = 1_700_000_000.0
    conn = 0
    count = 0
    while count < n_messages:
        conn += 1
        c = f"c{conn}"
        t += 0.5
        yield Open(t, c, "tcp", f"127.0.0.1:{40000 + conn % 20000}", "10.0.0.5:3333")
        for _ in range(2000):
            t += rng.uniform(0.001, 0.2)
            r = rng.random()
            if r < 0.55:
                temp = round(rng.uniform(18, 26), 1)
                args = [1, {"temp_valid": 1, "temp_celsius": temp, "humidity": 41, "AQI": 35}]
                yield Data(t, c, "outlet", obj(rng.randint(100000, 999999), 11, args))
                count += 1
            elif r < 0.9:
                pid = rng.randint(100000, 999999)
                cb = rng.choice((9, 12, 15, 10))
                req = {"packetID": pid, "payload": {"callbackName": cb}}
                yield Data(t, c, "app", json.dumps(req).encode() + b"\n")
                t += 0.02
                reply = obj(pid, cb, [1, 0], puback=1)
                if r < 0.6:  # split across two reads
                    yield Data(t, c, "outlet", reply[:20])
                    yield Data(t + 0.001, c, "outlet", reply[20:])
                else:
                    yield Data(t, c, "outlet", reply)
                count += 2
            elif r < 0.995:  # two pushes merged in one segment
                a = obj(rng.randint(100000, 999999), 9, [1, 1]).rstrip()
                b = obj(rng.randint(100000, 999999), 15, [1, 80])
                yield Data(t, c, "outlet", a + b)
                count += 2
            else:  # an OTA update: request, ack, progress, result
                pid = rng.randint(100000, 999999)
                target = rng.choice((1, 2))
                req = {
                    "packetID": pid,
                    "payload": {"callbackName": 21, "callbackArgs": [target, 0]},
                }
                yield Data(t, c, "app", json.dumps(req).encode() + b"\n")
                for pct in range(0, 101, 20):
                    t += 0.5
                    yield Data(t, c, "outlet", obj(rng.randint(100000, 999999), 22, [target, pct]))
                t += 0.5
                yield Data(t, c, "outlet", obj(rng.randint(100000, 999999), 23, [target, 1]))
                count += 8
        t += 0.1
        yield Close(t, c, "outlet")


PHASES = {
    "baseline": """
import json
from proxy.store.capture import read_capture
n = 0
for ev in read_capture(PATH).events:
    data = getattr(ev, "data", None)
    if data is not None:
        for part in data.split(b"\\n"):
            if part.strip():
                try:
                    json.loads(part)
                except ValueError:
                    pass
                n += 1
""",
    "read": """
from proxy.store.capture import read_capture
n = 0
for ev in read_capture(PATH).events:
    n += 1
""",
    "framing": """
from proxy.store.capture import read_capture
from proxy.core.framing import Framer
f = Framer()
n = 0
for ev in read_capture(PATH).events:
    n += len(f.feed(ev))
""",
    "analysis": """
from proxy.core.analysis import Analysis
from proxy.store.capture import read_capture
a = Analysis()
a.feed_all(read_capture(PATH).events)
a.finish()
n = len(a.messages)
""",
    "live": """
import itertools
from proxy.core.analysis import Analysis
from proxy.store.capture import read_capture
events = list(itertools.islice(read_capture(PATH).events, 200_000))
a = Analysis()
feed = a.feed
t0 = time.perf_counter()
for ev in events:
    feed(ev)
n = len(events)
""",
}

RUNNER = """
import resource, sys, time
PATH = sys.argv[1]
t0 = time.perf_counter()
{body}
dt = time.perf_counter() - t0
print(n, dt, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def run_phase(name: str, path: Path) -> tuple[int, float, float]:
    code = RUNNER.format(body=PHASES[name])
    out = subprocess.run(
        [sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True
    ).stdout.split()
    return int(out[0]), float(out[1]), int(out[2]) / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--keep", action="store_true", help="keep the generated capture")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="invis-bench-"))
    path = tmp / "bench.invcap"
    t0 = time.perf_counter()
    with CaptureWriter(path, {"title": "benchmark"}, flush_each=False) as writer:
        events = writer.write_all(generate(args.messages))
    gen = time.perf_counter() - t0
    size = path.stat().st_size / 1e6
    print(f"generated {events:,} events ({size:.1f} MB) in {gen:.2f} s -> {path}")

    results = {name: run_phase(name, path) for name in PHASES}
    _, base_t, _ = results["baseline"]
    print(
        f"{'phase':<10} {'messages':>10} {'seconds':>8} {'msg/s':>10} {'RSS MiB':>8} {'x base':>7}"
    )
    for name, (n, dt, rss) in results.items():
        if name == "live":
            print(
                f"{name:<10} {n:>10,} {dt:>8.2f} {n / dt:>10,.0f}"
                f"  events (GC on): {dt / n * 1e6:.1f} us/event"
            )
            continue
        print(f"{name:<10} {n:>10,} {dt:>8.2f} {n / dt:>10,.0f} {rss:>8.0f} {dt / base_t:>7.2f}")
    read_t, frame_t, all_t = (results[k][1] for k in ("read", "framing", "analysis"))
    n_msgs = results["analysis"][0]
    print(
        "stages (us/message): "
        + ", ".join(
            f"{label} {dt / n_msgs * 1e6:.2f}"
            for label, dt in (
                ("read", read_t),
                ("framing", frame_t - read_t),
                ("decode+correlate", all_t - frame_t),
            )
        )
    )
    n, dt, rss = results["analysis"]
    ok = n / dt >= 200_000 and dt <= 5.0 * n / 1_000_000 and rss <= 1024
    print(f"targets (>= 200k msg/s, <= 5 s per 1M, <= 1 GiB): {'met' if ok else 'NOT met'}")
    if not args.keep:
        path.unlink()
        os.rmdir(tmp)
    return 0


if __name__ == "__main__":
    sys.exit(main())
