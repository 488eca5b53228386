"""`invisproxy view`: the TUI on a capture or trace, a capture still being written, or a replay."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from proxy.cli.options import positive_float
from proxy.core.errors import UserError


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "view",
        help="the TUI on a capture or trace",
        description=(
            "Open a capture (.invcap) or trace (.jsonl) in the timeline: decoded messages, "
            "links between requests and what they caused, OTA updates at a glance. "
            "Press ? inside for the keys."
        ),
    )
    p.add_argument("file", type=Path, help="capture or trace to open")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument(
        "--follow",
        action="store_true",
        help="tail a capture another process is still writing (e.g. invisproxy run)",
    )
    mode.add_argument(
        "--play",
        action="store_true",
        help="play the capture at its recorded pace (space pauses, . steps, +/- speed)",
    )
    p.add_argument(
        "--speed",
        type=positive_float,
        default=1.0,
        metavar="N",
        help="with --play: play N times faster than recorded (default 1)",
    )
    p.add_argument(
        "--stall-window",
        type=positive_float,
        default=None,
        metavar="S",
        help="seconds without news before an OTA update counts as stalled (default 60)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.speed != 1.0 and not args.play:
        raise UserError("--speed only makes sense with --play")
    path: Path = args.file
    if not path.exists():
        raise UserError(f"{path}: no such file")

    from tui.app import run_tui
    from tui.sources import FileSource, FollowSource, PlaySource, Source

    source: Source
    if args.follow:
        from proxy.store.recording import sniff

        if sniff(path) != "capture":
            raise UserError(f"{path}: --follow tails a capture (.invcap); this is a trace")
        source = FollowSource(path)
    elif args.play:
        source = PlaySource.from_file(path, speed=args.speed)
    else:
        source = FileSource(path)
    run_tui(source, title=str(path), stall_window=args.stall_window)
    return 0
