"""decode() cost per message against json.loads of the same bytes.

Run: ``.venv/bin/python tests/bench/bench_protocol.py [N]`` or
``.venv/bin/pytest -s tests/bench/bench_protocol.py``. The analysis has to get through
a million messages in about five seconds including framing and correlation, so the
decoder's share is budgeted at ~1-1.5 µs for a typical message. The baseline, measured
in the same run, is ``json.loads`` of each message's bytes: the framer pays it anyway,
so decode should cost well under it. ``summary``/``fields`` run only for rows on screen;
their cost is printed for reference.
"""

from __future__ import annotations

import gc
import json
import sys
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import pytest

from proxy.core.events import Side
from proxy.core.framing import Frame
from proxy.core.model import Message
from proxy.core.protocol import decode, fields, summary

pytestmark = pytest.mark.bench

DEFAULT_N = 200_000

READINGS = {
    "temp_valid": 1,
    "aqi_valid": 1,
    "temp_celsius": 22.5,
    "humidity": 41,
    "AQI": 35,
    "AQI_accuracy": 3,
    "pressure": 101325,
    "gas": 48211,
    "co2_equiv": 612.4,
    "co2_peak_lvl": 700,
    "lux_valid": 1,
    "lux": 120,
}

CASES: dict[str, tuple[Side, Callable[[int], dict[str, Any]]]] = {
    "cb11 push": (
        "outlet",
        lambda i: {
            "sn": "11B27540076",
            "packetID": 100000 + i % 900000,
            "payload": {"callbackName": 11, "callbackArgs": [2, READINGS]},
        },
    ),
    "cb22 push": (
        "outlet",
        lambda i: {
            "sn": "11B27540076",
            "packetID": 100000 + i % 900000,
            "payload": {"callbackName": 22, "callbackArgs": [1 + i % 3, i % 101]},
        },
    ),
    "cb20 request": (
        "app",
        lambda i: {"packetID": 100000 + i % 900000, "payload": {"callbackName": 20}},
    ),
    "pure ack": (
        "outlet",
        lambda i: {"sn": "11B27540076", "packetID": 100000 + i % 900000, "PUBACK": 1},
    ),
}


def _each(show: Callable[[Message], object], sample: list[Message]) -> list[object]:
    return [show(m) for m in sample]


def timed(fn: Callable[[], Any]) -> float:
    gc.collect()
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def run(n: int = DEFAULT_N) -> dict[str, float]:
    figures: dict[str, float] = {}
    print(f"\n{n:,} messages per case; µs per message (best of 3)")
    print(f"{'case':<14}{'json.loads':>12}{'decode':>10}{'ratio':>8}{'summary':>10}{'fields':>10}")
    for case, (side, make) in CASES.items():
        raws = [json.dumps(make(i), separators=(",", ":")).encode() for i in range(n)]
        frames = [Frame(i * 0.001, "c1", side, raw, json.loads(raw)) for i, raw in enumerate(raws)]

        def baseline(raws: list[bytes] = raws, loads: Callable[[bytes], Any] = json.loads) -> None:
            for raw in raws:
                loads(raw)

        def decode_all(frames: list[Frame] = frames) -> None:
            for i, frame in enumerate(frames):
                decode(frame, i, "tcp")

        base = min(timed(baseline) for _ in range(3)) / n * 1e6
        ours = min(timed(decode_all) for _ in range(3)) / n * 1e6
        sample = [decode(f, i, "tcp") for i, f in enumerate(frames[: n // 10 or 1])]
        line = timed(partial(_each, summary, sample)) / len(sample) * 1e6
        shown = timed(partial(_each, fields, sample)) / len(sample) * 1e6
        figures[case] = ours
        figures[f"{case} baseline"] = base
        print(f"{case:<14}{base:>12.3f}{ours:>10.3f}{ours / base:>8.2f}{line:>10.3f}{shown:>10.3f}")
    return figures


def test_decode_costs_less_than_parsing_the_same_bytes() -> None:
    figures = run()
    for case in CASES:
        assert figures[case] < figures[f"{case} baseline"], case


if __name__ == "__main__":
    run(int(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_N)
