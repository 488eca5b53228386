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

from proxy.commands.analyze import add_analysis_options
from proxy.errors import UserError

if TYPE_CHECKING:
    from proxy.analysis import Analysis
    from proxy.capture import CaptureWriter
    from proxy.events import Event

OPEN_HOSTS = ("0.0.0.0", "::", "")


def port_number(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port out of range 0-65535: {text!r}")
    return value


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
        "--outlet-tcp-port", type=port_number, default=3333, metavar="PORT",
        help="the outlet's raw TCP port (default 3333)",
    )  # fmt: skip
    p.add_argument(
        "--outlet-ws-port", type=port_number, default=80, metavar="PORT",
        help="the outlet's WebSocket (HTTP) port (default 80)",
    )  # fmt: skip
    p.add_argument(
        "--listen-host", default="127.0.0.1", metavar="HOST",
        help="where the proxy listens (default 127.0.0.1; 0.0.0.0 opens it to the network)",
    )  # fmt: skip
    p.add_argument(
        "--tcp-port", type=port_number, default=3333, metavar="PORT",
        help="raw TCP listen port (default 3333, 0 = any free port)",
    )  # fmt: skip
    p.add_argument(
        "--ws-port", type=port_number, default=8080, metavar="PORT",
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


def default_capture_path(now: float | None = None) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    return Path("captures") / f"invis-{stamp}.invcap"


def _say(text: str) -> None:
    print(f"invisproxy run: {text}", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    if args.no_tcp and args.no_ws:
        raise UserError("--no-tcp and --no-ws together leave nothing to relay")
    if args.listen_host.strip("[]") in OPEN_HOSTS:
        _say(
            f"warning: listening on {args.listen_host}: anyone on the network can reach "
            "the outlet through this proxy"
        )
    if not args.headless:
        _say("note: the live TUI is not available in this build; running headless")
    return asyncio.run(_serve(args))


def _open_capture(args: argparse.Namespace) -> CaptureWriter | None:
    if args.no_record:
        return None
    from proxy.capture import CaptureWriter

    path = Path(args.record) if args.record else default_capture_path()
    meta = {
        "source": "invisproxy run",
        "outlet": args.outlet,
        "outlet_tcp_port": None if args.no_tcp else args.outlet_tcp_port,
        "outlet_ws_port": None if args.no_ws else args.outlet_ws_port,
    }
    try:
        if not args.record:
            path.parent.mkdir(parents=True, exist_ok=True)
        return CaptureWriter(path, meta, flush_each=True)
    except FileExistsError:
        raise UserError(f"{path} already exists; choose another --record file") from None
    except OSError as exc:
        raise UserError(f"cannot write the capture {path}: {exc.strerror or exc}") from None


async def _check_outlet(host: str) -> None:
    loop = asyncio.get_running_loop()
    try:
        await loop.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        reason = exc.strerror if isinstance(exc, socket.gaierror) else str(exc)
        raise UserError(f"cannot resolve the outlet host {host!r}: {reason}") from None


class _Headless:
    """Feeds the analysis and prints every new timeline row (message, open, close)."""

    def __init__(self, analysis: Analysis, echo: bool) -> None:
        self.analysis = analysis
        self.echo = echo
        self.printed = 0

    def __call__(self, event: Event) -> None:
        self.analysis.feed(event)
        if self.echo:
            self.flush()

    def flush(self) -> None:
        from proxy import report

        rows = self.analysis.rows
        if self.printed < len(rows):
            lines = [
                line
                for row in rows[self.printed :]
                for line in report.format_row(self.analysis, row)
            ]
            self.printed = len(rows)
            print("\n".join(lines), flush=True)


async def _serve(args: argparse.Namespace) -> int:
    from proxy import report
    from proxy.analysis import Analysis
    from proxy.relay import Relay

    await _check_outlet(args.outlet)
    logging.basicConfig(level=logging.WARNING, format="invisproxy run: %(message)s")

    writer = _open_capture(args)
    analysis = Analysis(stall_window=args.stall_window, reply_timeout=args.reply_timeout)
    headless = _Headless(analysis, echo=True)
    relay = Relay(
        args.outlet,
        outlet_tcp_port=args.outlet_tcp_port,
        outlet_ws_port=args.outlet_ws_port,
        listen_host=args.listen_host,
        tcp_port=None if args.no_tcp else args.tcp_port,
        ws_port=None if args.no_ws else args.ws_port,
        # the record is written before the bytes are forwarded (nothing forwarded is
        # ever missing from it); the analysis runs just after, off the relay's latency
        sinks=[writer.write] if writer else [],
        deferred_sinks=[headless],
    )
    try:
        await relay.start()
    except BaseException:
        if writer is not None:
            writer.close()
            Path(writer.path).unlink(missing_ok=True)
        raise

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    ticker = asyncio.create_task(_tick(analysis, headless))
    try:
        host = args.outlet
        if relay.tcp_address:
            h, p = relay.tcp_address
            _say(f"relaying TCP {h}:{p} -> {host}:{args.outlet_tcp_port}")
        if relay.ws_address:
            h, p = relay.ws_address
            _say(f"relaying WebSocket ws://{h}:{p}/ws -> ws://{host}:{args.outlet_ws_port}/ws")
        _say(f"recording to {writer.path}" if writer else "not recording (--no-record)")
        _say("press Ctrl-C to stop")
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        ticker.cancel()
        await relay.stop()
        analysis.advance(time.time())
        analysis.finish()
        headless.flush()
        if relay.addon.sink_errors:
            _say(f"warning: {relay.addon.sink_errors} sink call(s) failed (see above)")
        print("\n".join(report.summary(analysis)), flush=True)
        if writer is not None:
            writer.close()
            _say(f"capture {writer.path}: {writer.count} events")
    return 0


async def _tick(analysis: Analysis, headless: _Headless) -> None:
    """Let wall-clock time reach the analysis (reply timeouts, stalled updates)."""
    while True:
        await asyncio.sleep(1.0)
        analysis.advance(time.time())
        headless.flush()
