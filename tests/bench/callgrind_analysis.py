"""Instruction counts of ``Analysis.feed_all`` on a fixed generated trace (callgrind).

    .venv/bin/python tests/bench/callgrind_analysis.py [--messages N] [--tree DIR ...]

Wall time on a shared box is too noisy to compare a refactoring with; instruction
counts are not. For each source tree (default: this one) it runs, under
``valgrind --tool=callgrind``, once generating the events only and once generating and
analysing them; the difference is the analysis' own cost. With two trees (e.g. a copy
of the code before a change, then this one) it prints the ratio of the second to the
first, measured in the same run.

``--exit`` includes the interpreter's exit (freeing the analysis); by default the child
ends with ``os._exit`` right after ``finish()``, so only feeding and finishing count.
"""

from __future__ import annotations

import argparse
import pickle
import re
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parents[2]

CHILD = """
import pickle, sys
sys.path.insert(0, {tree!r})
try:  # the layered tree, or a flat one from before the restructuring
    from proxy.core import events as ev
    from proxy.core.analysis import Analysis
except ImportError:
    from proxy import events as ev
    from proxy.analysis import Analysis
with open({events!r}, "rb") as f:
    plain = pickle.load(f)
events = [getattr(ev, kind)(*fields) for kind, fields in plain]
if {feed}:
    a = Analysis()
    a.feed_all(events)
    a.finish()
if {skip_exit}:
    import os
    os._exit(0)
"""
"""Each tree builds the same events with its own classes from a pickle of plain tuples,
so trees of different layouts can be compared (the pickle's reading is in both runs)."""


def _plain_events(n: int, path: Path) -> None:
    if str(HERE) not in sys.path:  # run as a script: the repository is not on the path
        sys.path.insert(0, str(HERE))
    from proxy.core.events import Data, Open
    from tests.bench.bench_analysis import generate

    plain: list[tuple[str, list[object]]] = []
    for e in generate(n):
        fields: list[object] = [e.t, e.conn]
        if isinstance(e, Data):
            fields += [e.side, e.data, e.text, e.injected]
        elif isinstance(e, Open):
            fields += [e.transport, e.app, e.outlet]
        else:
            fields += [e.by, e.error]
        plain.append((type(e).__name__, fields))
    path.write_bytes(pickle.dumps(plain))


def instructions(tree: Path, events: Path, feed: bool, skip_exit: bool) -> int:
    """Total instructions callgrind counts for one child run."""
    code = CHILD.format(tree=str(tree), events=str(events), feed=feed, skip_exit=skip_exit)
    return count_instructions(code)


def count_instructions(code: str) -> int:
    """What callgrind counts for ``python -c code`` (in a scratch folder)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "cg.out"
        run = subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
             sys.executable, "-c", code],
            capture_output=True, text=True, check=True, cwd=tmp,
        )  # fmt: skip
    found = re.search(r"Collected : (\d+)", run.stderr)
    if found is None:
        raise SystemExit(f"no instruction count in callgrind's output:\n{run.stderr}")
    return int(found.group(1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--tree", type=Path, action="append", help="a source tree to measure")
    parser.add_argument("--exit", action="store_true", help="count the exit's teardown too")
    args = parser.parse_args()
    trees = args.tree or [HERE]
    costs = []
    tmp = tempfile.TemporaryDirectory()
    events = Path(tmp.name) / "events.pickle"
    _plain_events(args.messages, events)
    for tree in trees:
        base = instructions(tree, events, False, not args.exit)
        total = instructions(tree, events, True, not args.exit)
        costs.append(total - base)
        print(f"{tree}: feed_all+finish {total - base:,} instructions "
              f"({(total - base) / args.messages:,.0f} per message)")  # fmt: skip
    if len(costs) > 1:
        print(f"ratio {trees[-1].name} / {trees[0].name}: {costs[-1] / costs[0]:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
