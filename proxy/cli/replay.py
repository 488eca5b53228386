"""`invisproxy replay serve|send`: play a capture's outlet to an app, or its app to an outlet."""

from __future__ import annotations

import contextlib
import os
import sys
import time
from typing import TYPE_CHECKING

import click

from proxy.cli.options import (
    POSITIVE,
    Choices,
    InvisCommand,
    InvisGroup,
    Recording,
    listener_options,
    outlet_options,
    recording_options,
    speed_option,
)
from proxy.core.errors import UserError
from proxy.net.addresses import Listener, Outlet
from proxy.net.listen import listen_warning

if TYPE_CHECKING:
    from proxy.replay.script import Script
    from proxy.replay.send import SendOptions, TransportChoice
    from proxy.replay.serve import ServeOptions, Unmatched

DEFAULT_TCP_PORT = 3333
DEFAULT_SERVE_WS_PORT = 8080


@click.group(
    "replay",
    cls=InvisGroup,
    short_help="replay a capture: be the outlet for an app (serve) or re-drive an outlet (send)",
    help=(
        "Replay a capture or trace. 'serve' plays the recorded outlet to a live app, "
        "so the app's handling of a firmware update reproduces without hardware; "
        "'send' re-sends the recorded app's requests to an outlet and diffs the "
        "replies against the recorded ones. (mitmproxy cannot replay TCP or "
        "WebSocket flows; this is protocol-aware replay.)"
    ),
)
def group() -> None:
    """The mode (serve or send) does the work."""


@group.command(
    "serve",
    cls=InvisCommand,
    short_help="listen like the outlet and answer an app from the capture",
    help=(
        "Listen like the outlet (raw TCP and a WebSocket at /ws) and play the capture: "
        "each app request gets the recorded reply of the matching recorded request "
        "(same callback and arguments, used in recorded order; else the same callback "
        "with other arguments, reported) with the app's new packetID in it. Pushes are "
        "played with their recorded timing: OTA progress, results and the revB "
        "synchronous cb21 (given the new request's packetID) relative to the app's "
        "cb21, other pushes such as cb11 sensors relative to the connection. Where the "
        "outlet closed a connection, the app's connection is dropped and further "
        "attempts are turned away for as long as the recording shows the outlet was "
        "down; the next connection continues with the next recorded one. Prints what "
        "it listens on and one line per request; Ctrl-C stops."
    ),
)
@click.argument("file", metavar="FILE")
@listener_options(
    tcp_default=DEFAULT_TCP_PORT,
    ws_default=DEFAULT_SERVE_WS_PORT,
    host_alias=True,
    can_disable="listen on",
)
@speed_option("divide every recorded delay by N (default 1; 10 plays ten times faster)")
@click.option(
    "--unmatched", type=Choices(("puback0", "silence")), default="puback0",
    help=(
        "answer to a request the capture cannot answer: puback0 sends "
        "{sn, packetID, PUBACK: 0} (default), silence sends nothing"
    ),
)  # fmt: skip
@click.option(
    "--strict", is_flag=True,
    help="stop with exit code 1 at the first request the capture cannot answer",
)  # fmt: skip
def serve_command(
    file: str, listener: Listener, speed: float, unmatched: Unmatched, strict: bool
) -> int:
    from proxy.replay.serve import ServeOptions

    options = ServeOptions(
        listener=listener,
        speed=speed,
        unmatched=unmatched,
        strict=strict,
    )
    return run_serve(file, options)


@group.command(
    "send",
    cls=InvisCommand,
    short_help="re-send the capture's app requests to an outlet and diff the replies",
    help=(
        "Re-send the recorded app's requests to an outlet in recorded order, one "
        "connection per recorded connection, with fresh packetIDs and the recorded "
        "gaps; wait for each reply the recording saw; record the session as a new "
        "capture; and print how the new replies differ from the recorded ones, "
        "ignoring packetIDs, cb11 sensor readings and timestamps. Callbacks that "
        "restart, reset, update or calibrate (5, 6, 7, 21, 24, 25, 26, 28) are skipped "
        "unless --allow-destructive, and so is a request whose duplicate keys hide one "
        "(the outlet may keep another duplicate than the one shown)."
    ),
    epilog="Exit status: 0 no differences, 1 differences, 2 errors.",
)
@click.argument("file", metavar="FILE")
@outlet_options(old_port_names=True)
@click.option(
    "--transport", type=Choices(("tcp", "ws", "auto")), default="auto",
    help="connect over tcp, ws, or auto: as each connection was recorded (default)",
)  # fmt: skip
@speed_option("divide the recorded gaps between requests by N (default 1)")
@click.option(
    "--timeout", type=POSITIVE, default=5.0, metavar="S",
    help="seconds to wait for each reply (default 5)",
)  # fmt: skip
@click.option(
    "--keep-packet-ids", is_flag=True, help="send the recorded packetIDs instead of fresh ones"
)
@click.option(
    "--allow-destructive", is_flag=True,
    help="also send restarts, resets, firmware updates and calibrations, and requests "
    "whose duplicate keys hide one",
)  # fmt: skip
@click.option("--ignore-sn", is_flag=True, help="do not report a different serial number")
@recording_options("the new session", "replay-<timestamp>.invcap")
def send_command(
    file: str,
    outlet: Outlet,
    transport: TransportChoice,
    speed: float,
    timeout: float,
    keep_packet_ids: bool,
    allow_destructive: bool,
    ignore_sn: bool,
    recording: Recording,
) -> int:
    from proxy.replay.send import SendOptions

    script = load_script(file)  # before anything is created for the recording
    options = SendOptions(
        outlet=outlet,
        transport=transport,
        speed=speed,
        keep_packet_ids=keep_packet_ids,
        allow_destructive=allow_destructive,
        timeout=timeout,
        ignore_sn=ignore_sn,
        record=_record_path(recording),
        meta={"replayed": os.path.basename(file)},
    )
    return run_send(file, script, options)


def register(parent: click.Group) -> None:
    parent.add_command(group)


# ---------------------------------------------------------------------- shared


def load_script(path: str) -> Script:
    """Analyse a capture or trace into a replay script; problems in it go to stderr."""
    from proxy.core.analysis import analyze
    from proxy.replay.script import build_script
    from proxy.store.recording import load_events

    with load_events(path) as source:
        analysis = analyze(source.events)
        for problem in source.problems:
            _err(f"{path}: {problem} (the rest is replayed)")
    return build_script(analysis)


def _say(line: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {line}", flush=True)


def _err(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------- serve


def run_serve(file: str, options: ServeOptions) -> int:
    import asyncio

    exposes = "the replayed outlet and every reply it recorded"
    warning = listen_warning(options.listener.host, exposes)
    script = load_script(file)
    _say(f"replaying {file}: {script.describe()}; speed {options.speed:g}")
    code = 0
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C: asyncio.run already cleaned up
        code = asyncio.run(_serve(script, options, warning))
    _say("stopped")
    return code


async def _serve(script: Script, options: ServeOptions, warning: str | None) -> int:
    import asyncio
    import signal

    from proxy.replay.serve import ReplayServer

    server = ReplayServer(script, options, on_line=_say, on_problem=_err)
    await server.start()
    if warning:
        _err(f"invisproxy replay serve: warning: {warning}")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    _say(f"listening: {server.listening()} (Ctrl-C to stop)")
    waits = [asyncio.create_task(stop.wait()), asyncio.create_task(server.failed.wait())]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in waits:
            task.cancel()
        loop.remove_signal_handler(signal.SIGTERM)
        await server.stop()
    if server.failed.is_set():
        _err("stopped: a request had no recorded match (--strict)")
        return 1
    return 0


# ---------------------------------------------------------------------- send


def _record_path(recording: Recording) -> str | None:
    """Where 'send' records: the chosen file (never over another) or a fresh name."""
    from proxy.store.capture import DEFAULT_FOLDER, EXTENSION

    if not recording.enabled:
        return None
    if recording.file is not None:
        if recording.file.exists():
            raise UserError(f"{recording.file} already exists; choose another --record file")
        return str(recording.file)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    os.makedirs(DEFAULT_FOLDER, exist_ok=True)
    return os.path.join(DEFAULT_FOLDER, f"replay-{stamp}{EXTENSION}")


def run_send(file: str, script: Script, options: SendOptions) -> int:
    import asyncio

    from proxy.replay.send import send_replay

    _err(f"sending {len(script.requests)} request(s) from {file} to {options.outlet.host}")
    try:
        result = asyncio.run(send_replay(script, options, on_line=_err))
    except KeyboardInterrupt:
        _err("interrupted")
        return 130
    if result.skipped:
        names = ", ".join(r.label() for r in result.skipped)
        print(f"skipped {len(result.skipped)} destructive request(s): {names}")
    for line in result.differences:
        print(line)
    if result.differences:
        print(f"{len(result.differences)} difference(s) in {len(result.sent)} request(s)")
    else:
        print(f"no differences in {len(result.sent)} request(s)")
    if result.capture is not None:
        print(f"recorded to {result.capture}")
    return 1 if result.differences else 0
