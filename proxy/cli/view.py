"""`invisproxy view`: the TUI on a capture or trace, a capture still being written, or a replay."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import click

from proxy.cli.options import InvisCommand, speed_option, stall_window_option
from proxy.core.errors import UserError


@dataclass(frozen=True, slots=True)
class ViewOptions:
    file: Path
    follow: bool
    play: bool
    speed: float
    stall_window: float | None


@click.command(
    "view",
    cls=InvisCommand,
    short_help="the TUI on a capture or trace",
    help=(
        "Open a capture (.invcap) or trace (.jsonl) in the timeline: decoded messages, "
        "links between requests and what they caused, OTA updates at a glance. "
        "Press ? inside for the keys."
    ),
)
@click.argument("file", metavar="FILE")
@click.option(
    "--follow", is_flag=True,
    help="tail a capture another process is still writing (e.g. invisproxy run)",
)  # fmt: skip
@click.option(
    "--play", is_flag=True,
    help="play the capture at its recorded pace (space pauses, . steps, +/- speed)",
)  # fmt: skip
@speed_option("with --play: play N times faster than recorded (default 1)")
@stall_window_option(None)
def command(file: str, follow: bool, play: bool, speed: float, stall_window: float | None) -> int:
    if follow and play:
        raise click.UsageError("--follow and --play exclude each other")
    return run(ViewOptions(Path(file), follow, play, speed, stall_window))


def register(group: click.Group) -> None:
    group.add_command(command)


def run(args: ViewOptions) -> int:
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
