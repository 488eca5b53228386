"""`invisproxy run --outlet HOST`: the live proxy, recording and analysing as it relays."""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
import sys
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import click

from proxy.cli.options import (
    InvisCommand,
    Recording,
    Windows,
    analysis_options,
    listener_options,
    outlet_options,
    recording_options,
)
from proxy.cli.rule_options import RuleOptions, describe_rules, rule_options
from proxy.core.errors import UserError
from proxy.net.addresses import Listener, Outlet
from proxy.net.listen import listen_warning

if TYPE_CHECKING:
    from collections.abc import Callable

    from proxy.core.analysis import Analysis
    from proxy.core.events import Event
    from proxy.core.rules import RuleSet
    from proxy.mitm.live import HeadlessPrinter, LiveProxy


@dataclass(frozen=True, slots=True)
class RunOptions:
    outlet: Outlet
    listener: Listener
    recording: Recording
    windows: Windows
    headless: bool
    rules: RuleOptions


@click.command(
    "run",
    cls=InvisCommand,
    short_help="the live proxy between an app and an outlet",
    help=(
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
@outlet_options()
@listener_options(tcp_default=3333, ws_default=8080, host_alias=False, can_disable="relay")
@recording_options("a capture", "invis-YYYYmmdd-HHMMSS.invcap")
@click.option(
    "--headless", is_flag=True,
    help="print one line per decoded message, with its links, instead of the TUI",
)  # fmt: skip
@analysis_options
@rule_options
def command(
    outlet: Outlet,
    listener: Listener,
    recording: Recording,
    windows: Windows,
    headless: bool,
    rules: RuleOptions,
) -> int:
    return run(RunOptions(outlet, listener, recording, windows, headless, rules))


def register(group: click.Group) -> None:
    group.add_command(command)


def _say(text: str) -> None:
    print(f"invisproxy run: {text}", file=sys.stderr, flush=True)


def run(args: RunOptions) -> int:
    # the relay binds the host without brackets ([::1] -> ::1); resolve what it binds
    warning = listen_warning(args.listener.host.strip("[]"), "the outlet through this proxy")
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
    args: RunOptions,
    consumer: Callable[[Event], object],
    after: Callable[[Event], object] | None = None,
    rules: RuleSet | None = None,
) -> LiveProxy:
    from proxy.mitm.live import LiveProxy, default_capture_path

    recording = args.recording
    record = (recording.file or default_capture_path()) if recording.enabled else None
    return LiveProxy(
        args.outlet.host,
        consumer,
        after=after,
        outlet_tcp_port=args.outlet.tcp_port,
        outlet_ws_port=args.outlet.ws_port,
        listen_host=args.listener.host,
        tcp_port=args.listener.tcp_port,
        ws_port=args.listener.ws_port,
        record=record,
        make_folder=recording.file is None,
        meta={"source": "invisproxy run"},
        rules=rules,
    )


async def _serve_headless(args: RunOptions, warning: str | None) -> int:
    from proxy.core import report
    from proxy.core.retention import BoundedAnalysis
    from proxy.mitm.live import HeadlessPrinter

    await _check_outlet(args.outlet.host)
    logging.basicConfig(level=logging.WARNING, format="invisproxy run: %(message)s")
    # mitmproxy's own log lines repeat, in its words, what we report in ours
    logging.getLogger("mitmproxy").setLevel(logging.CRITICAL)
    # the capture is the record: the printed log forgets what it showed (flat memory)
    windows = args.windows
    rules = args.rules.ruleset()
    analysis = BoundedAnalysis(
        stall_window=windows.stall_window,
        reply_timeout=windows.reply_timeout,
        watch_app=rules is not None,  # what the app saw, from before the first rule acts
    )
    printer = HeadlessPrinter(analysis)
    live = _live_proxy(args, analysis.feed, printer, rules)
    await live.start()
    if warning:
        _say(f"warning: {warning}")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    ticker = asyncio.create_task(_tick(analysis, printer))
    try:
        async with args.rules.watching(rules, say=_say) as watcher:
            for line in live.describe() + describe_rules(rules):
                _say(line)
            if watcher is not None:
                _say(f"watching {watcher.path}: edits take effect when saved")
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
        for line in describe_rules(rules):
            _say(line)
        if where:
            _say(where)
    return 0


async def _serve_tui(args: RunOptions, warning: str | None) -> int:
    from tui.app import InvisApp
    from tui.sources import LiveSource

    await _check_outlet(args.outlet.host)
    # mitmproxy logs must not scribble over the screen
    logging.getLogger("mitmproxy").setLevel(logging.CRITICAL)
    source = LiveSource(f"live: outlet {args.outlet.host}")
    rules = args.rules.ruleset()
    live = _live_proxy(args, source.push, rules=rules)
    await live.start()
    source.control = live.relay  # intercept, inject and the rules screen act on it
    if warning:  # on stderr, so it is still there when the TUI's screen goes away
        _say(f"warning: {warning}")
    from proxy.core.analysis import Analysis

    windows = args.windows
    analysis = Analysis(stall_window=windows.stall_window, reply_timeout=windows.reply_timeout)
    app = InvisApp(source, title=" · ".join(live.describe()), analysis=analysis)

    try:
        async with args.rules.watching(rules, app=app):
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
