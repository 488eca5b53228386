"""`invisproxy demo`: the whole OTA story with no hardware.

The outlet simulator, the proxy in front of it and a scripted app that does what a
real app does (device info, check for updates, start the OTA, reconnect after the
drop, wait for the result, read the device info again), shown live in the TUI, or
printed with ``--headless``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal

import click

from proxy.cli.options import (
    NON_NEGATIVE,
    Choices,
    InvisCommand,
    Recording,
    recording_options,
)
from proxy.cli.rule_options import RuleOptions, describe_rules, rule_options
from proxy.cli.sim import FAULT

if TYPE_CHECKING:
    from collections.abc import Callable

    from proxy.core.analysis import Analysis
    from proxy.core.rules import RuleSet
    from proxy.mitm.live import LiveProxy
    from proxy.sim.outlet import Fault, OutletSimulator
    from proxy.sim.scripted_app import AppResult

Revision = Literal["A", "B"]
Target = Literal["outlet", "deco"]


@dataclass(frozen=True, slots=True)
class DemoOptions:
    rev: Revision
    target: Target
    headless: bool
    ota_seconds: float
    fault: Fault | None
    recording: Recording
    seed: int | None
    rules: RuleOptions


@click.command(
    "demo",
    cls=InvisCommand,
    short_help="the whole OTA story on the built-in simulator, no hardware needed",
    help=(
        "Start a simulated InvisOutlet, the proxy in front of it, and a scripted app "
        "that reads the device info, checks for updates, starts a firmware update "
        "(cb21), reconnects when the outlet restarts, waits for the result and reads "
        "the device info again. The TUI shows it live; --headless prints the timeline "
        "and the analysis instead and exits 0 only if the update was seen and "
        "correlated correctly."
    ),
    epilog=(
        "revB (default) speaks raw TCP and restarts as soon as it gets cb21, answering "
        "on the next connection; revA speaks WebSocket and acknowledges first. Both "
        "reboot after a successful update. The demo records to captures/ unless "
        "--no-record, so you can 'invisproxy view' it afterwards. With --rule or "
        "--rules the proxy makes the outlet misbehave as the rules say (e.g. --rule "
        "'cb:21 dir:app -> reply puback=0' refuses the update before it reaches the "
        "outlet), and --headless checks that the analysis tells what the app saw."
    ),
)
@click.option("--rev", type=Choices(("A", "B")), default="B", help="outlet revision (default B)")
@click.option(
    "--target", type=Choices(("outlet", "deco")), default="outlet",
    help="update the outlet (default) or its InvisDeco faceplate",
)  # fmt: skip
@click.option(
    "--headless", is_flag=True,
    help="print the timeline and the analysis instead of the TUI; exit 0 only if the "
    "analysis agrees with what the app experienced (succeeded and verified by default)",
)  # fmt: skip
@click.option(
    "--ota-seconds", type=NON_NEGATIVE, default=12.0, metavar="S",
    help="how long the simulated download takes (default 12)",
)  # fmt: skip
@click.option(
    "--fault", type=FAULT, metavar="FAULT",
    help="make the demo's one update go wrong: refuse, fail-at:N or stall-at:N (N = percent)",
)  # fmt: skip
@recording_options("a capture", "demo-YYYYmmdd-HHMMSS.invcap")
@click.option(
    "--seed", type=int, default=None, metavar="N", help="seed for the simulator's TCP quirks"
)
@rule_options
def command(
    rev: Revision,
    target: Target,
    headless: bool,
    ota_seconds: float,
    fault: Fault | None,
    recording: Recording,
    seed: int | None,
    rules: RuleOptions,
) -> int:
    return run(DemoOptions(rev, target, headless, ota_seconds, fault, recording, seed, rules))


def register(group: click.Group) -> None:
    group.add_command(command)


def run(args: DemoOptions) -> int:
    if args.headless:
        return asyncio.run(_demo_headless(args))
    return asyncio.run(_demo_tui(args))


def _say(text: str) -> None:
    print(f"invisproxy demo: {text}", file=sys.stderr, flush=True)


def _stall_window(args: DemoOptions) -> float:
    """Short enough for a stall fault to show within the demo, long enough otherwise."""
    if args.fault is not None and args.fault.kind == "stall-at":
        return 8.0
    return 60.0


async def _start(
    args: DemoOptions,
    consumer: Callable[[Any], object],
    after: Callable[[Any], object] | None = None,
    rules: RuleSet | None = None,
) -> tuple[OutletSimulator, LiveProxy]:
    from proxy.mitm.live import LiveProxy, default_capture_path
    from proxy.sim.outlet import OutletSimulator, SimConfig

    # mitmproxy and the simulator log through logging; keep the screen for the story
    logging.getLogger("mitmproxy").setLevel(logging.CRITICAL)
    config = SimConfig(
        revision=args.rev,
        ota_seconds=args.ota_seconds,
        reboot_seconds=2.0,
        restart_seconds=1.0,
        sensor_interval=3.0,
        fault=args.fault,
        seed=args.seed,
    )
    sim = OutletSimulator(config)
    await sim.start()
    recording = args.recording
    record = (recording.file or default_capture_path("demo")) if recording.enabled else None
    live = LiveProxy(
        "127.0.0.1",
        consumer,
        after=after,
        outlet_tcp_port=sim.tcp_port,
        outlet_ws_port=sim.ws_port,
        tcp_port=0,
        ws_port=0,
        record=record,
        make_folder=recording.file is None,
        meta={"source": "invisproxy demo", "revision": args.rev, "target": args.target},
        rules=rules,
    )
    try:
        await live.start()
    except BaseException:
        await sim.stop()
        raise
    return sim, live


def _app(args: DemoOptions, live: LiveProxy, on_line: Callable[[str], None]) -> Any:
    from proxy.sim.scripted_app import ScriptedApp

    kwargs: dict[str, Any] = {}
    if args.rev == "A":
        assert live.ws_address is not None
        host, port = live.ws_address
        kwargs["ws_url"] = f"ws://{host}:{port}/ws"
    else:
        assert live.tcp_address is not None
        kwargs["tcp_port"] = live.tcp_address[1]
    return ScriptedApp(
        "127.0.0.1",
        target=args.target,
        method=0,
        timeout=max(120.0, args.ota_seconds * 4),
        stall_timeout=_stall_window(args) * 1.5,
        poll_interval=2.0,
        seed=args.seed,
        on_line=on_line,
        **kwargs,
    )


def verdict(analysis: Analysis, result: AppResult) -> tuple[bool, str]:
    """Whether the analysis tells the story the app lived through.

    Under rules the app may see something other than what the outlet did (a refusal the
    proxy made, a success turned into a failure): the app is compared with the analysis'
    ``app_outcome`` when there is one, and the verdict says both truths.
    """
    expected = {"timeout": ("stalled",)}.get(result.outcome, (result.outcome,))
    analysis.app_view()  # sets each intervened session's app_outcome
    sessions = analysis.sessions
    if len(sessions) != 1:
        return False, f"expected one OTA session in the analysis, found {len(sessions)}"
    session = sessions[0]
    if session.request is None:
        return False, "the analysis did not link the update to its cb21 request"
    app_outcome = session.app_outcome
    seen = app_outcome or session.outcome
    outlet = _outlet_truth(analysis, session.request, session.outcome, app_outcome)
    if seen not in expected:
        says = f"the app saw '{seen}'" if app_outcome else f"'{seen}'"
        return False, f"the app saw '{result.outcome}' but the analysis says {says}{outlet}"
    if seen == "succeeded" and session.verified is not True:
        return False, (
            f"the update succeeded but the analysis could not verify the firmware "
            f"(expected {session.fw_expected}, after {session.fw_after})"
        )
    text = f"the analysis agrees with the app: {seen}"
    if app_outcome is not None:
        text += f" (the app saw {_SAW.get(seen, seen)})"
    if seen == "succeeded":
        text += f", firmware {session.fw_before} → {session.fw_after} verified"
    return True, text + outlet


_SAW: Final = {"refused": "a refusal", "failed": "a failure", "succeeded": "a success"}


def _outlet_truth(analysis: Analysis, request: int, outcome: str, app_outcome: str | None) -> str:
    """What the outlet did, when a rule made the app see something else."""
    message = analysis.messages[request]
    mark = message.intervention
    if mark is not None and mark.action in ("reply", "drop", "close"):
        by = f" ({mark.rule})" if mark.rule else ""
        return f"; the outlet never saw the request: the proxy {_DID[mark.action]} it{by}"
    if app_outcome is not None and app_outcome != outcome:
        return f"; the outlet itself says '{outcome}'"
    return ""


_DID: Final = {"reply": "answered", "drop": "dropped", "close": "closed the connection on"}


async def _demo_headless(args: DemoOptions) -> int:
    from proxy.core import report
    from proxy.core.analysis import Analysis
    from proxy.mitm.live import HeadlessPrinter

    analysis = Analysis(stall_window=_stall_window(args))
    printer = HeadlessPrinter(analysis)
    rules = args.rules.ruleset()
    sim, live = await _start(args, analysis.feed, printer, rules)
    for line in live.describe() + describe_rules(rules):
        _say(line)
    try:
        async with args.rules.watching(rules, say=_say):
            result = await _app(args, live, lambda line: _say(f"app: {line}")).run()
    finally:
        where = await live.stop()
        await sim.stop()
    analysis.advance(time.time())
    analysis.finish()
    printer.flush()
    print()
    print("\n".join(report.summary(analysis)), flush=True)
    _say(f"app: {result.outcome}: {result.reason}")
    for line in describe_rules(rules):
        _say(line)
    if where:
        _say(where)
    ok, why = verdict(analysis, result)
    _say(("OK: " if ok else "FAILED: ") + why)
    return 0 if ok else 1


async def _demo_tui(args: DemoOptions) -> int:
    from proxy.core.analysis import Analysis
    from tui.app import InvisApp
    from tui.sources import LiveSource

    source = LiveSource(f"demo: simulated rev{args.rev} outlet")
    # The verdict is checked on an analysis of its own, up to date the moment the app
    # finishes; the TUI's analysis takes events in on its own repaint ticks.
    check = Analysis(stall_window=_stall_window(args))

    def consume(event: Any) -> None:
        check.feed(event)
        source.push(event)

    rules = args.rules.ruleset()
    sim, live = await _start(args, consume, rules=rules)
    source.control = live.relay  # intercept, inject and the rules screen act on it
    app = InvisApp(source, title=f"demo · rev{args.rev} · {args.target} update",
                   stall_window=_stall_window(args))  # fmt: skip

    async def script() -> None:
        scripted = _app(args, live, lambda line: app.feeder.set_progress(f"app: {line}"))
        try:
            result = await scripted.run()
        except Exception as exc:  # the demo's own bug: say so on screen, keep the TUI
            app.notify(f"The scripted app stopped: {exc!r}", title="Demo", severity="error")
            raise
        app.feeder.set_progress("")
        live.flush()
        check.advance(time.time())
        ok, why = verdict(check, result)
        app.notify(
            f"The scripted app finished: {result.outcome}. {why[:1].upper()}{why[1:]}. "
            "Press q to quit.",
            title="Demo finished",
            severity="information" if ok else "error",
            timeout=30,
        )

    task = asyncio.get_running_loop().create_task(script())
    try:
        async with args.rules.watching(rules, app=app):
            await app.run_async()
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task  # an error in the script surfaces here, not silently
        where = await live.stop()
        await sim.stop()
    if where:
        _say(where)
    return 0
