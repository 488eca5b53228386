"""`invisproxy analyze FILE [--json]`: the analysis of a capture or trace."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import click

from proxy.cli.options import InvisCommand, Windows, analysis_options, redact_options
from proxy.core.events import Event

Redact = Literal["secrets", "all"] | None


@dataclass(frozen=True, slots=True)
class AnalyzeOptions:
    file: str
    json: bool
    summary: bool
    windows: Windows
    redact: Redact


@click.command(
    "analyze",
    cls=InvisCommand,
    short_help="print the analysis of a capture or trace (timeline, links, OTA updates)",
    help=(
        "Decode every message of a capture (.invcap) or trace (.jsonl), link requests to "
        "replies and OTA requests to everything they caused, and print a readable "
        "timeline with an OTA summary, or with --json one JSON document: every decoded "
        "message, every link and every OTA update."
    ),
    epilog=(
        "Exit status: 0 when every event was read, 1 when some could not be (each is "
        "listed on stderr with its line or record; the rest is analysed), 2 on errors."
    ),
)
@click.argument("file", metavar="FILE")
@click.option("--json", "as_json", is_flag=True, help="print the analysis as JSON")
@click.option("--summary", is_flag=True, help="print only the OTA summary, not the timeline")
@analysis_options
@redact_options
def command(file: str, as_json: bool, summary: bool, windows: Windows, redact: Redact) -> int:
    return run(AnalyzeOptions(file, as_json, summary, windows, redact))


def register(group: click.Group) -> None:
    group.add_command(command)


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


def run(args: AnalyzeOptions) -> int:
    from proxy.core import report
    from proxy.core.analysis import Analysis
    from proxy.store.recording import load_events

    source = load_events(args.file)
    windows = args.windows
    analysis = Analysis(stall_window=windows.stall_window, reply_timeout=windows.reply_timeout)
    events: Iterator[Event] = with_progress(iter(source.events), args.file)
    if args.redact:
        from proxy.cli.convert import redacted

        redacted_events, _ = redacted(list(events), {}, args.redact == "all", sys.stderr)
        events = iter(redacted_events)
    analysis.feed_all(events)
    analysis.finish()
    for problem in source.problems:
        print(f"invisproxy analyze: warning: {problem}", file=sys.stderr)
    out = sys.stdout
    # 1 when the input had problems (they are listed above), the analysis
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
