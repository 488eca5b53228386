"""Instruction counts of the relay addon's per-message path (callgrind), tree against tree.

    .venv/bin/python tests/bench/callgrind_relay.py [--messages N] [--tree DIR ...]

``bench_relay`` measures round trips through real sockets, which a shared box makes
noisy; this counts what the addon itself does per forwarded TCP chunk with no rule
(``tcp_message`` on a mitmproxy test flow, no sinks), so a change to that path can be
compared across two source trees (e.g. before and after it) in the same run.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(HERE))  # run as a script: the repository is not on the path

from tests.bench.callgrind_analysis import count_instructions  # noqa: E402

CHILD = """
import sys
sys.path.insert(0, {tree!r})
from mitmproxy.test import tflow
from mitmproxy import tcp
try:
    from proxy.mitm.addon import InvisAddon
except ImportError:  # the flat tree from before the layers
    from proxy.addon import InvisAddon
addon = InvisAddon(direct=True)
flow = tflow.ttcpflow(messages=True)
flow.messages = []
chunk = b'{{"packetID":123456,"payload":{{"callbackName":20}}}}\\n'
n = {n} if {run} else 0
for i in range(n):
    flow.messages.append(tcp.TCPMessage(i % 2 == 0, chunk))
    addon.tcp_message(flow)
import os
os._exit(0)
"""


def instructions(tree: Path, n: int, run: bool) -> int:
    return count_instructions(CHILD.format(tree=str(tree), n=n, run=run))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--tree", type=Path, action="append", help="a source tree to measure")
    args = parser.parse_args()
    trees = args.tree or [HERE]
    costs = []
    for tree in trees:
        cost = instructions(tree, args.messages, True) - instructions(tree, args.messages, False)
        costs.append(cost)
        print(f"{tree}: {cost:,} instructions ({cost / args.messages:,.0f} per chunk)")
    if len(costs) > 1:
        print(f"ratio {trees[-1].name} / {trees[0].name}: {costs[-1] / costs[0]:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
