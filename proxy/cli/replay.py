"""`invisproxy replay serve|send`: play a capture's outlet to an app, or its app to an outlet."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from typing import TYPE_CHECKING, Any

from proxy.cli.options import listen_port, positive_float, remote_port
from proxy.core.errors import UserError
from proxy.net.listen import listen_warning

if TYPE_CHECKING:
    from proxy.replay.script import Script

DEFAULT_TCP_PORT = 3333
DEFAULT_SERVE_WS_PORT = 8080
DEFAULT_OUTLET_WS_PORT = 80


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "replay",
        help="replay a capture: be the outlet for an app (serve) or re-drive an outlet (send)",
        description=(
            "Replay a capture or trace. 'serve' plays the recorded outlet to a live app, "
            "so the app's handling of a firmware update reproduces without hardware; "
            "'send' re-sends the recorded app's requests to an outlet and diffs the "
            "replies against the recorded ones. (mitmproxy cannot replay TCP or "
            "WebSocket flows; this is protocol-aware replay.)"
        ),
    )
    subs = p.add_subparsers(dest="replay_command", metavar="MODE")
    p.set_defaults(func=lambda args: _usage(p))
    _register_serve(subs)
    _register_send(subs)


def _usage(p: argparse.ArgumentParser) -> int:
    p.print_help(sys.stderr)
    return 2


def _register_serve(subs: Any) -> None:
    p: argparse.ArgumentParser = subs.add_parser(
        "serve",
        help="listen like the outlet and answer an app from the capture",
        description=(
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
    p.add_argument("file", metavar="FILE", help="capture (.invcap) or trace (.jsonl) to play")
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1; it warns if that is not loopback only)",
    )
    p.add_argument(
        "--tcp-port",
        type=listen_port,
        default=DEFAULT_TCP_PORT,
        metavar="PORT",
        help=f"raw TCP port (default {DEFAULT_TCP_PORT}; 0 picks a free one)",
    )
    p.add_argument(
        "--ws-port",
        type=listen_port,
        default=DEFAULT_SERVE_WS_PORT,
        metavar="PORT",
        help=f"WebSocket port, path /ws (default {DEFAULT_SERVE_WS_PORT}: 80 needs root)",
    )
    p.add_argument("--no-tcp", action="store_true", help="do not listen on raw TCP")
    p.add_argument("--no-ws", action="store_true", help="do not listen for WebSockets")
    p.add_argument(
        "--speed",
        type=positive_float,
        default=1.0,
        metavar="N",
        help="divide every recorded delay by N (default 1; 10 plays ten times faster)",
    )
    p.add_argument(
        "--unmatched",
        choices=("puback0", "silence"),
        default="puback0",
        help=(
            "answer to a request the capture cannot answer: puback0 sends "
            "{sn, packetID, PUBACK: 0} (default), silence sends nothing"
        ),
    )
    p.add_argument(
        "--strict",
        action="store_true",
        help="stop with exit code 1 at the first request the capture cannot answer",
    )
    p.set_defaults(func=run_serve)


def _register_send(subs: Any) -> None:
    p: argparse.ArgumentParser = subs.add_parser(
        "send",
        help="re-send the capture's app requests to an outlet and diff the replies",
        description=(
            "Re-send the recorded app's requests to an outlet in recorded order, one "
            "connection per recorded connection, with fresh packetIDs and the recorded "
            "gaps; wait for each reply the recording saw; record the session as a new "
            "capture; and print how the new replies differ from the recorded ones, "
            "ignoring packetIDs, cb11 sensor readings and timestamps. Callbacks that "
            "restart, reset, update or calibrate (5, 6, 7, 21, 24, 25, 26, 28) are skipped "
            "unless --allow-destructive, and so is a request whose duplicate keys hide one "
            "(the outlet may keep another duplicate than the one shown). Exit code 0: no "
            "differences; 1: differences; "
            "2: errors."
        ),
    )
    p.add_argument("file", metavar="FILE", help="capture (.invcap) or trace (.jsonl) to send")
    p.add_argument("--outlet", required=True, metavar="HOST", help="the outlet's address")
    p.add_argument(
        "--tcp-port",
        type=remote_port,
        default=DEFAULT_TCP_PORT,
        metavar="PORT",
        help=f"the outlet's raw TCP port (default {DEFAULT_TCP_PORT})",
    )
    p.add_argument(
        "--ws-port",
        type=remote_port,
        default=DEFAULT_OUTLET_WS_PORT,
        metavar="PORT",
        help=f"the outlet's WebSocket port, path /ws (default {DEFAULT_OUTLET_WS_PORT})",
    )
    p.add_argument(
        "--transport",
        choices=("tcp", "ws", "auto"),
        default="auto",
        help="connect over tcp, ws, or auto: as each connection was recorded (default)",
    )
    p.add_argument(
        "--speed",
        type=positive_float,
        default=1.0,
        metavar="N",
        help="divide the recorded gaps between requests by N (default 1)",
    )
    p.add_argument(
        "--timeout",
        type=positive_float,
        default=5.0,
        metavar="S",
        help="seconds to wait for each reply (default 5)",
    )
    p.add_argument(
        "--keep-packet-ids",
        action="store_true",
        help="send the recorded packetIDs instead of fresh ones",
    )
    p.add_argument(
        "--allow-destructive",
        action="store_true",
        help="also send restarts, resets, firmware updates and calibrations, and requests "
        "whose duplicate keys hide one",
    )
    p.add_argument(
        "--ignore-sn", action="store_true", help="do not report a different serial number"
    )
    rec = p.add_mutually_exclusive_group()
    rec.add_argument(
        "--record",
        metavar="FILE",
        help="where to record the new session (default captures/replay-<timestamp>.invcap)",
    )
    rec.add_argument("--no-record", action="store_true", help="do not record the new session")
    p.set_defaults(func=run_send)


# ---------------------------------------------------------------------- argument types


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


def run_serve(args: argparse.Namespace) -> int:
    import asyncio

    from proxy.replay.serve import ServeOptions

    if args.no_tcp and args.no_ws:
        raise UserError("--no-tcp and --no-ws together leave nothing to listen on")
    warning = listen_warning(args.host, "the replayed outlet and every reply it recorded")
    script = load_script(args.file)
    options = ServeOptions(
        host=args.host,
        tcp_port=None if args.no_tcp else args.tcp_port,
        ws_port=None if args.no_ws else args.ws_port,
        speed=args.speed,
        unmatched=args.unmatched,
        strict=args.strict,
    )
    _say(f"replaying {args.file}: {script.describe()}; speed {args.speed:g}")
    code = 0
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C: asyncio.run already cleaned up
        code = asyncio.run(_serve(script, options, warning))
    _say("stopped")
    return code


async def _serve(script: Script, options: Any, warning: str | None) -> int:
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


def run_send(args: argparse.Namespace) -> int:
    import asyncio

    from proxy.replay.send import SendOptions, send_replay
    from proxy.store.capture import DEFAULT_FOLDER, EXTENSION

    script = load_script(args.file)
    record: str | None = None
    if not args.no_record:
        record = args.record
        if record is None:
            stamp = time.strftime("%Y%m%d-%H%M%S")
            record = os.path.join(DEFAULT_FOLDER, f"replay-{stamp}{EXTENSION}")
            os.makedirs(DEFAULT_FOLDER, exist_ok=True)
        elif os.path.exists(record):
            raise UserError(f"{record} already exists; choose another --record file")
    options = SendOptions(
        outlet=args.outlet,
        tcp_port=args.tcp_port,
        ws_port=args.ws_port,
        transport=args.transport,
        speed=args.speed,
        keep_packet_ids=args.keep_packet_ids,
        allow_destructive=args.allow_destructive,
        timeout=args.timeout,
        ignore_sn=args.ignore_sn,
        record=record,
        meta={"replayed": os.path.basename(args.file)},
    )
    _err(f"sending {len(script.requests)} request(s) from {args.file} to {args.outlet}")
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
