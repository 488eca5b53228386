"""`invisproxy run --outlet HOST`: the live proxy, recording and analysing as it relays."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import socket
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from proxy.cli.analyze import add_analysis_options
from proxy.cli.options import listen_port, remote_port
from proxy.core.errors import UserError
from proxy.net.listen import listen_warning

if TYPE_CHECKING:
    from collections.abc import Callable

    from proxy.core.analysis import Analysis
    from proxy.core.events import Event
    from proxy.mitm.live import HeadlessPrinter, LiveProxy


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "run",
        help="the live proxy between an app and an outlet",
        description=(
            "Relay an app's traffic to an InvisOutlet byte for byte: raw TCP (the app "
            "connects to --tcp-port instead of the outlet's 3333) and the WebSocket "
            "(ws://LISTEN:--ws-port/ws instead of ws://OUTLET/ws). Every event is recorded "
            "to a capture and analysed live."
        ),
        epilog=(
            "Point the app at this machine instead of the outlet. The WebSocket port "
            "defaults to 8080 because binding port 80 needs root (or CAP_NET_BIND_SERVICE); "
            "use --ws-port 80 only if the app cannot be told another port."
        ),
    )
    p.add_argument("--outlet", required=True, metavar="HOST", help="the outlet's address")
    p.add_argument(
        "--outlet-tcp-port", type=remote_port, default=3333, metavar="PORT",
        help="the outlet's raw TCP port (default 3333)",
    )  # fmt: skip
    p.add_argument(
        "--outlet-ws-port", type=remote_port, default=80, metavar="PORT",
        help="the outlet's WebSocket (HTTP) port (default 80)",
    )  # fmt: skip
    p.add_argument(
        "--listen-host", default="127.0.0.1", metavar="HOST",
        help="where the proxy listens (default 127.0.0.1; any other than a loopback address "
        "opens the outlet to the network, and the proxy warns)",
    )  # fmt: skip
    p.add_argument(
        "--tcp-port", type=listen_port, default=3333, metavar="PORT",
        help="raw TCP listen port (default 3333, 0 = any free port)",
    )  # fmt: skip
    p.add_argument(
        "--ws-port", type=listen_port, default=8080, metavar="PORT",
        help="WebSocket listen port, path /ws (default 8080; 80 needs root; 0 = any free port)",
    )  # fmt: skip
    p.add_argument("--no-tcp", action="store_true", help="do not relay raw TCP")
    p.add_argument("--no-ws", action="store_true", help="do not relay the WebSocket")
    rec = p.add_mutually_exclusive_group()
    rec.add_argument(
        "--record", metavar="FILE",
        help="capture file to write (default captures/invis-YYYYmmdd-HHMMSS.invcap)",
    )  # fmt: skip
    rec.add_argument("--no-record", action="store_true", help="do not record a capture")
    p.add_argument(
        "--headless", action="store_true",
        help="print one line per decoded message, with its links, instead of the TUI",
    )  # fmt: skip
    add_analysis_options(p)
    p.set_defaults(func=run)


def _say(text: str) -> None:
    print(f"invisproxy run: {text}", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    if args.no_tcp and args.no_ws:
        raise UserError("--no-tcp and --no-ws together leave nothing to relay")
    # the relay binds the host without brackets ([::1] -> ::1); resolve what it binds
    warning = listen_warning(args.listen_host.strip("[]"), "the outlet through this proxy")
    if args.headless:
        return asyncio.run(_serve_headless(args, warning))
    return asyncio.run(_serve_tui(args, warning))


async def _check_outlet(host: str) -> None:
    loop = asyncio.get_running_loop()
    try:
        await loop.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        reason = exc.strerror if isinstance(exc, socket.gaierror) else str(exc)
        raise UserError(f"cannot resolve the outlet host {host!r}: {reason}") from None


def _live_proxy(
    args: argparse.Namespace,
    consumer: Callable[[Event], object],
    after: Callable[[Event], object] | None = None,
) -> LiveProxy:
    from proxy.mitm.live import LiveProxy, default_capture_path

    record = None if args.no_record else Path(args.record or default_capture_path())
    return LiveProxy(
        args.outlet,
        consumer,
        after=after,
        outlet_tcp_port=args.outlet_tcp_port,
        outlet_ws_port=args.outlet_ws_port,
        listen_host=args.listen_host,
        tcp_port=None if args.no_tcp else args.tcp_port,
        ws_port=None if args.no_ws else args.ws_port,
        record=record,
        make_folder=not args.record,
        meta={"source": "invisproxy run"},
    )


async def _serve_headless(args: argparse.Namespace, warning: str | None) -> int:
    from proxy.core import report
    from proxy.core.retention import BoundedAnalysis
    from proxy.mitm.live import HeadlessPrinter

    await _check_outlet(args.outlet)
    logging.basicConfig(level=logging.WARNING, format="invisproxy run: %(message)s")
    # mitmproxy's own log lines repeat, in its words, what we report in ours
    logging.getLogger("mitmproxy").setLevel(logging.CRITICAL)
    # the capture is the record: the printed log forgets what it showed (flat memory)
    analysis = BoundedAnalysis(stall_window=args.stall_window, reply_timeout=args.reply_timeout)
    printer = HeadlessPrinter(analysis)
    live = _live_proxy(args, analysis.feed, printer)
    await live.start()
    if warning:
        _say(f"warning: {warning}")

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    ticker = asyncio.create_task(_tick(analysis, printer))
    try:
        for line in live.describe():
            _say(line)
        _say("press Ctrl-C to stop")
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        ticker.cancel()
        where = await live.stop()
        analysis.advance(time.time())
        analysis.finish()
        printer.flush()
        print("\n".join(report.summary(analysis)), flush=True)
        if where:
            _say(where)
    return 0


async def _serve_tui(args: argparse.Namespace, warning: str | None) -> int:
    from tui.app import InvisApp
    from tui.sources import LiveSource

    await _check_outlet(args.outlet)
    # mitmproxy logs must not scribble over the screen
    logging.getLogger("mitmproxy").setLevel(logging.CRITICAL)
    source = LiveSource(f"live: outlet {args.outlet}")
    live = _live_proxy(args, source.push)
    await live.start()
    if warning:  # on stderr, so it is still there when the TUI's screen goes away
        _say(f"warning: {warning}")
    from proxy.core.analysis import Analysis

    analysis = Analysis(stall_window=args.stall_window, reply_timeout=args.reply_timeout)
    app = InvisApp(source, title=" · ".join(live.describe()), analysis=analysis)
    try:
        await app.run_async()
    finally:
        where = await live.stop()
    if where:
        _say(where)
    return 0


async def _tick(analysis: Analysis, printer: HeadlessPrinter) -> None:
    """Let wall-clock time reach the analysis (reply timeouts, stalled updates)."""
    while True:
        await asyncio.sleep(1.0)
        analysis.advance(time.time())
        printer.flush()
