"""`invisproxy analyze FILE [--json]`: the analysis of a capture or trace."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator
from typing import Any

from proxy.commands._types import positive_float
from proxy.events import Event


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "analyze",
        help="print the analysis of a capture or trace (timeline, links, OTA updates)",
        description=(
            "Decode every message of a capture (.invcap) or trace (.jsonl), link requests to "
            "replies and OTA requests to everything they caused, and print a readable "
            "timeline with an OTA summary, or with --json the document of DESIGN 4.4."
        ),
        epilog=(
            "Exit status: 0 when every event was read, 1 when some could not be (each is "
            "listed on stderr with its line or record; the rest is analysed), 2 on errors."
        ),
    )
    p.add_argument("file", metavar="FILE", help="capture (.invcap) or trace (.jsonl)")
    p.add_argument("--json", action="store_true", help="print the analysis as JSON")
    p.add_argument(
        "--summary", action="store_true", help="print only the OTA summary, not the timeline"
    )
    add_analysis_options(p)
    p.set_defaults(func=run)


def add_analysis_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--stall-window",
        type=positive_float,
        default=60.0,
        metavar="S",
        help="an update with no message for longer than S seconds is stalled (default 60)",
    )
    p.add_argument(
        "--reply-timeout",
        type=positive_float,
        default=30.0,
        metavar="S",
        help="a request with no reply after S seconds is unanswered (default 30)",
    )


def with_progress(events: Iterator[Event], label: str) -> Iterator[Event]:
    """Report progress on stderr for long reads, only when a person is watching."""
    if not sys.stderr.isatty():
        yield from events
        return
    shown = False
    next_report = time.monotonic() + 0.5
    count = 0
    for count, event in enumerate(events, 1):
        yield event
        if count % 4096 == 0 and time.monotonic() > next_report:
            print(f"\r{label}: {count:,} events read ...", end="", file=sys.stderr, flush=True)
            shown = True
            next_report = time.monotonic() + 0.5
    if shown:
        print(f"\r{label}: {count:,} events read.      ", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    from proxy import report
    from proxy.analysis import Analysis
    from proxy.sources import load_events

    source = load_events(args.file)
    analysis = Analysis(stall_window=args.stall_window, reply_timeout=args.reply_timeout)
    analysis.feed_all(with_progress(iter(source.events), args.file))
    analysis.finish()
    for problem in source.problems:
        print(f"invisproxy analyze: warning: {problem}", file=sys.stderr)
    out = sys.stdout
    # DESIGN 4.5: 1 when the input had problems (they are listed above), the analysis
    # of everything else printed all the same
    status = 1 if source.problems else 0
    if args.json:
        json.dump(analysis.to_json(), out, ensure_ascii=False)
        out.write("\n")
        return status
    if not args.summary:
        for line in report.timeline(analysis):
            out.write(line + "\n")
        out.write("\n")
    for line in report.summary(analysis):
        out.write(line + "\n")
    return status
