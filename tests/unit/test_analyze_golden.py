"""``analyze --json`` output, byte for byte, for every scenario trace and sample capture.

The golden files in tests/data/analyze_golden were written by the analysis as it was
before it became a package (issue 9 item 3), so that splitting it is proven to change
nothing anyone can see. Regenerate them only for a deliberate change of the output:

    .venv/bin/python tests/unit/test_analyze_golden.py --write

Times in reasons are local wall-clock times for recordings, so the zone is pinned.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from proxy.cli.main import main

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "data" / "analyze_golden"
INPUTS = sorted((ROOT / "tests" / "scenarios").glob("*.jsonl")) + sorted(
    (ROOT / "captures").glob("sample-*.invcap")
)


@contextlib.contextmanager
def utc() -> Iterator[None]:
    old = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    time.tzset()
    try:
        yield
    finally:
        if old is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = old
        time.tzset()


def analyze_json(path: Path) -> bytes:
    """What ``invisproxy analyze --json PATH`` prints, with its exit status."""
    out = io.StringIO()
    with utc(), contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        status = main(["analyze", "--json", str(path)])
    return f"status {status}\n{out.getvalue()}".encode()


def golden_of(path: Path) -> Path:
    return GOLDEN / (path.name + ".out")


def test_every_input_has_a_golden_file() -> None:
    assert len(INPUTS) >= 34
    missing = [p.name for p in INPUTS if not golden_of(p).exists()]
    assert not missing


@pytest.mark.parametrize("path", INPUTS, ids=lambda p: p.name)
def test_analyze_json_is_byte_identical(path: Path) -> None:
    assert analyze_json(path) == golden_of(path).read_bytes()


if __name__ == "__main__" and sys.argv[1:] == ["--write"]:
    for p in INPUTS:
        golden_of(p).write_bytes(analyze_json(p))
        print(golden_of(p).relative_to(ROOT))
