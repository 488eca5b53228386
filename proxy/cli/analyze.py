"""`invisproxy analyze FILE [--json]`: the analysis of a capture or trace."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator
from typing import Any

from proxy.cli.options import positive_float
from proxy.core.events import Event


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
    add_redact_options(p, pseudonyms=True)
    p.set_defaults(func=run)


def add_redact_options(p: argparse.ArgumentParser, pseudonyms: bool) -> None:
    """``--redact`` and ``--redact=all`` (two option strings: a bare ``--redact FILE``
    must not take FILE as its value)."""
    p.add_argument(
        "--redact",
        action="store_const",
        const="secrets",
        dest="redact",
        help=(
            "remove credentials (MQTT user and password, user:password in URLs, any "
            "'pass'/'password' key) in every form they take (JSON escapes, numbers, "
            "objects, duplicate keys), and list each removal by message id and field on "
            "stderr. A message that holds one is rewritten as a whole from its decoded "
            "form (compact JSON; chunk boundaries inside that message may move); an "
            "invalid frame that names a secret key is cut from that key to its end. "
            "Reads the whole capture into memory"
        ),
    )
    if pseudonyms:
        p.add_argument(
            "--redact=all",
            action="store_const",
            const="all",
            dest="redact",
            help=(
                "--redact, and also replace serial numbers, MAC addresses, IP addresses "
                "(loopback excepted) and SSIDs by consistent pseudonyms (SN-1, "
                "02:00:00:00:00:01, 198.18.0.1, SSID-1): the same original always gets "
                "the same one, so the copy's analysis links and OTA updates are the "
                "original's. The pseudonym table is not written anywhere"
            ),
        )


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
    from proxy.core import report
    from proxy.core.analysis import Analysis
    from proxy.store.recording import load_events

    source = load_events(args.file)
    analysis = Analysis(stall_window=args.stall_window, reply_timeout=args.reply_timeout)
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
