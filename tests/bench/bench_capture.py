"""Capture write/read throughput against raw msgpack on the same records.

Run: ``.venv/bin/python tests/bench/bench_capture.py [N]`` (``resync [MB]`` for the
time to read past a corrupt region against a clean read of the same file) or
``.venv/bin/pytest -s tests/bench/bench_capture.py``. Prints events/s and MB/s for our
writer and reader next to a baseline measured in the same run (msgpack ``Packer.pack``
into a buffered file, ``Unpacker`` iteration over it) and their ratios. The baseline
is the floor of what any msgpack capture format costs; the ratio is what our event
objects, validation and crash-safety add on top.
"""

from __future__ import annotations

import gc
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import msgpack
import pytest

from proxy.core.events import Data, Event, Open, Side
from proxy.store.capture import CaptureWriter, capture_record, read_capture
from proxy.store.trace import read_trace, write_trace

pytestmark = pytest.mark.bench

DEFAULT_N = 1_000_000


def make_events(n: int) -> list[Event]:
    """Typical traffic: ~120-byte JSON chunks both ways on a few connections."""
    events: list[Event] = [
        Open(0.0, f"c{c}", "tcp", f"127.0.0.1:{50000 + c}", "10.0.0.5:3333") for c in range(4)
    ]
    for i in range(n - len(events)):
        side: Side = "app" if i % 2 == 0 else "outlet"
        chunk = (
            json.dumps(
                {
                    "packetID": 221040 + i,
                    "payload": {
                        "callbackName": 20 + i % 4,
                        "callbackArgs": {"sn": "11B27540076", "fw_rev": "0.0.1", "rssi": -61},
                    },
                },
                separators=(",", ":"),
            ).encode()
            + b"\n"
        )
        events.append(Data(0.001 * i, f"c{i % 4}", side, chunk))
    return events


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    gc.collect()
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def run(n: int = DEFAULT_N) -> dict[str, float]:
    events = make_events(n)
    records = [capture_record(e) for e in events]
    avg = sum(len(e.data) for e in events if isinstance(e, Data)) / n
    print(f"\n{n:,} events, average chunk {avg:.0f} bytes")
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "baseline.msgpack"
        ours = Path(tmp) / "ours.invcap"
        live = Path(tmp) / "live.invcap"
        trace = Path(tmp) / "ours.jsonl"

        def baseline_write() -> None:
            pack = msgpack.Packer(use_bin_type=True).pack
            with open(base, "wb", buffering=1 << 20) as fp:
                write = fp.write
                for rec in records:
                    write(pack(rec))

        def ours_write() -> None:
            with CaptureWriter(ours, {}, flush_each=False) as writer:
                writer.write_all(events)

        def live_write() -> None:
            with CaptureWriter(live, {}) as writer:
                for event in events:
                    writer.write(event)

        def baseline_read() -> int:
            with open(base, "rb") as fp:
                return sum(1 for _ in msgpack.Unpacker(fp, raw=False))

        def ours_read() -> int:
            with read_capture(ours) as loaded:
                count = sum(1 for _ in loaded.events)
            assert loaded.problems == []
            return count

        def trace_write() -> None:
            write_trace(trace, {}, events)

        def trace_read() -> int:
            with read_trace(trace) as loaded:
                return sum(1 for _ in loaded.events)

        rows = [
            ("write  baseline packb", baseline_write, base),
            ("write  CaptureWriter (bulk)", ours_write, ours),
            ("write  CaptureWriter (flush_each)", live_write, live),
            ("read   baseline Unpacker", baseline_read, base),
            ("read   read_capture -> events", ours_read, ours),
            ("write  trace JSONL", trace_write, trace),
            ("read   trace JSONL -> events", trace_read, trace),
        ]
        for label, fn, path in rows:
            seconds, result = timed(fn)
            if isinstance(result, int):
                assert result == n, (label, result)
            size = os.path.getsize(path)
            figures[label] = seconds
            print(
                f"{label:36s} {seconds:6.2f} s  {n / seconds / 1e6:5.2f} M events/s  "
                f"{size / seconds / 1e6:7.1f} MB/s  (file {size / 1e6:.0f} MB)"
            )
    w0, r0 = figures["write  baseline packb"], figures["read   baseline Unpacker"]
    print(
        "ratios vs baseline (time): "
        f"bulk write {figures['write  CaptureWriter (bulk)'] / w0:.2f}x, "
        f"flush_each write {figures['write  CaptureWriter (flush_each)'] / w0:.2f}x, "
        f"read {figures['read   read_capture -> events'] / r0:.2f}x, "
        f"trace write {figures['write  trace JSONL'] / w0:.2f}x, "
        f"trace read {figures['read   trace JSONL -> events'] / r0:.2f}x"
    )
    return figures


def damage(clean: bytes, how: str) -> bytes:
    """``clean`` with every record but the first and last 100 damaged ``how``.

    ``every``: a byte no msgpack value starts with, inside each record (each candidate
    record start fails its check); ``alternate``: the same in every other record (a
    restart after each); ``long``: each payload's length claims 4 GB, past the end.
    """
    unpacker = msgpack.Unpacker(raw=False)
    unpacker.feed(clean)
    offsets = [0]
    for _ in unpacker:
        offsets.append(unpacker.tell())
    data = bytearray(clean)
    for i, at in enumerate(offsets[101:-101]):
        if how == "every" or (how == "alternate" and i % 2):
            data[at + 12] = 0xC1
        elif how == "long":
            pos = data.index(b"\xa4data\xc4", at) + 5
            data[pos : pos + 2] = b"\xc6\xff"
    return bytes(data)


def run_resync(megabytes: float = 10.0) -> dict[str, float]:
    """Reading a capture whose middle ``megabytes`` are corrupt records, against reading
    the same file undamaged (issue 8 item 8: it was quadratic, 768 KB took 25.6 s)."""
    per_record = len(capture_record_bytes(make_events(200)[100]))
    n = int(megabytes * 1e6 / per_record)
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        clean = Path(tmp) / "clean.invcap"
        with CaptureWriter(clean, {}, flush_each=False) as writer:
            writer.write_all(make_events(n))
        raw = clean.read_bytes()

        def read(path: Path) -> tuple[int, int]:
            with read_capture(path) as loaded:
                return sum(1 for _ in loaded.events), len(loaded.problems)

        seconds, (count, problems) = timed(lambda: read(clean))
        assert problems == 0 and count == n
        figures["clean"] = seconds
        print(f"\n{len(raw) / 1e6:.1f} MB, {n:,} records: clean read {seconds:.2f} s")
        for how in ("every", "alternate", "long"):
            bad = Path(tmp) / f"{how}.invcap"
            bad.write_bytes(damage(raw, how))
            seconds, (count, problems) = timed(partial(read, bad))
            assert problems > 0 and count >= 200
            figures[how] = seconds
            print(
                f"damaged {how:9s} {seconds:6.2f} s  {count:,} records kept, "
                f"{problems:,} problems  ratio to clean {seconds / figures['clean']:.2f}x"
            )
    return figures


def capture_record_bytes(event: Event) -> bytes:
    return bytes(msgpack.packb(capture_record(event), use_bin_type=True))


def test_bench_resync() -> None:
    figures = run_resync(float(os.environ.get("BENCH_MB", 10.0)))
    assert all(seconds > 0 for seconds in figures.values())


def test_bench_capture() -> None:
    n = int(os.environ.get("BENCH_N", DEFAULT_N))
    figures = run(n)
    # Not a pass/fail threshold on speed (the box varies); the numbers are the result.
    assert all(seconds > 0 for seconds in figures.values())


if __name__ == "__main__":
    if sys.argv[1:2] == ["resync"]:
        run_resync(float(sys.argv[2]) if len(sys.argv) > 2 else 10.0)
    else:
        run(int(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_N)
