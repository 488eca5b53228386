"""The headless log says everything `analyze` would, even what is learnt later."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from proxy.core.analysis import Analysis
from proxy.mitm.live import HeadlessPrinter
from proxy.store.recording import load_events

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"


def test_annotations_made_after_a_message_was_printed_follow_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    analysis = Analysis()
    printer = HeadlessPrinter(analysis)
    for event in load_events(SCENARIOS / "revb_outlet_tcp.jsonl").events:
        analysis.feed(event)
        printer(event)  # print as traffic flows, as `run --headless` does
    out = capsys.readouterr().out
    # the cb21 request (#2) is printed before the outlet drops the connection; the
    # restart it caused is printed when the drop is seen
    request_line = out.index("#2 ")
    late = re.search(r"#2 \+ i ota-restart: the outlet closed connection c1", out)
    assert late is not None and late.start() > request_line
    # the final result (#11) is followed by its reboot in the same way
    assert re.search(r"#11 \+ i ota-restart", out)


def test_nothing_is_printed_twice(capsys: pytest.CaptureFixture[str]) -> None:
    analysis = Analysis()
    printer = HeadlessPrinter(analysis)
    for event in load_events(SCENARIOS / "chatter.jsonl").events:
        analysis.feed(event)
        printer(event)
        printer.flush()
    out = capsys.readouterr().out
    heads = re.findall(r"#(\d+) +(?:app|outlet)→", out)
    assert heads == [str(i) for i in range(len(analysis.messages))]
