"""`invisproxy sim`: run the outlet simulator in the foreground until Ctrl-C."""

from __future__ import annotations

import argparse
import contextlib
import sys
from typing import TYPE_CHECKING, Any, Literal

from proxy.cli.options import listen_port, non_negative_float
from proxy.core.errors import UserError
from proxy.net.listen import listen_warning

if TYPE_CHECKING:
    from proxy.sim.outlet import Fault, SimConfig

DEFAULT_TCP_PORT = 3333
DEFAULT_WS_PORT = 8080


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "sim",
        help="run a simulated InvisOutlet (raw TCP and WebSocket /ws) with a realistic OTA",
        description=(
            "Run a fake InvisOutlet that answers every callback of the local API on raw TCP "
            "and on a WebSocket at /ws, pushes sensor readings, and acts out firmware "
            "updates the way the real device does: revA acknowledges cb21, revB restarts "
            "at once and answers on the next connection; every outlet update ends in a "
            "reboot. The WebSocket listens on 8080 by default, not the device's 80, "
            "because port 80 needs root. Prints one line per connection and OTA step; "
            "Ctrl-C stops it."
        ),
    )
    p.add_argument("--rev", choices=("A", "B"), default="B", help="hardware revision (default B)")
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
        default=DEFAULT_WS_PORT,
        metavar="PORT",
        help=f"WebSocket port, path /ws (default {DEFAULT_WS_PORT}: 80 needs root; 0 = free)",
    )
    p.add_argument("--serial", metavar="SN", help="serial number (default depends on --rev)")
    p.add_argument(
        "--fw", metavar="VERSION", default="0.0.1", help="running outlet firmware (default 0.0.1)"
    )
    p.add_argument(
        "--fw-available",
        metavar="VERSION",
        default="0.0.2",
        help="outlet firmware on offer (default 0.0.2)",
    )
    p.add_argument(
        "--www-fw",
        metavar="VERSION",
        default="0.1.2",
        help="running web-UI partition (default 0.1.2)",
    )
    p.add_argument(
        "--www-fw-available",
        metavar="VERSION",
        default="0.3.0",
        help="web-UI partition on offer (default 0.3.0; equal to --www-fw skips the WWW phase)",
    )
    p.add_argument(
        "--deco-fw",
        metavar="VERSION",
        default="0.5.0",
        help="running faceplate firmware (default 0.5.0)",
    )
    p.add_argument(
        "--deco-fw-available",
        metavar="VERSION",
        default="0.5.1",
        help="faceplate firmware on offer (default 0.5.1)",
    )
    p.add_argument(
        "--ota-seconds",
        type=non_negative_float,
        default=8.0,
        metavar="S",
        help="total time of an update's progress phases (default 8)",
    )
    p.add_argument(
        "--reboot-seconds",
        type=non_negative_float,
        default=3.0,
        metavar="S",
        help="down time after a successful update or a restart (default 3)",
    )
    p.add_argument(
        "--restart-seconds",
        type=non_negative_float,
        default=1.0,
        metavar="S",
        help="revB: down time of the restart that follows cb21 (default 1)",
    )
    p.add_argument(
        "--sensor-interval",
        type=non_negative_float,
        default=5.0,
        metavar="S",
        help="seconds between cb11 sensor pushes; 0 turns them off (default 5)",
    )
    p.add_argument(
        "--fault",
        type=fault,
        metavar="F",
        help=(
            "misbehave during the next update (only that one, unless --fault-times): "
            "refuse, fail-at:N or stall-at:N (N in %%)"
        ),
    )
    p.add_argument(
        "--fault-times",
        type=fault_times,
        metavar="N|always",
        help=(
            "act the --fault out on the next N updates (default 1) or on every one "
            "(always); a request refused for its own reason (already up to date, an "
            "update running, the deco offline) does not count"
        ),
    )
    p.add_argument(
        "--seed", type=int, help="seed for packetIDs, sensor noise and TCP merges/splits"
    )
    p.set_defaults(func=run)


def fault(text: str) -> Fault:
    from proxy.sim.outlet import Fault

    try:
        return Fault.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def fault_times(text: str) -> int | Literal["always"]:
    """A count of 1 or more, or ``always``."""
    if text.strip().lower() == "always":
        return "always"
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a count of 1 or more, or 'always': {text!r}")
    return value


def run(args: argparse.Namespace) -> int:
    import asyncio
    import dataclasses

    from proxy.sim.outlet import SimConfig
    from proxy.sim.state import Firmware

    chosen_fault = args.fault
    if args.fault_times is not None:
        if chosen_fault is None:
            raise UserError("--fault-times needs a --fault to act out")
        times = None if args.fault_times == "always" else args.fault_times
        chosen_fault = dataclasses.replace(chosen_fault, times=times)
    warning = listen_warning(args.host, "the simulator")

    config = SimConfig(
        revision=args.rev,
        host=args.host,
        tcp_port=args.tcp_port,
        ws_port=args.ws_port,
        serial=args.serial,
        firmware=Firmware(
            im=args.fw,
            im_available=args.fw_available,
            www=args.www_fw,
            www_available=args.www_fw_available,
            pm=args.deco_fw,
            pm_available=args.deco_fw_available,
        ),
        ota_seconds=args.ota_seconds,
        reboot_seconds=args.reboot_seconds,
        restart_seconds=args.restart_seconds,
        sensor_interval=args.sensor_interval,
        fault=chosen_fault,
        seed=args.seed,
    )
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C: asyncio.run already cleaned up
        asyncio.run(_serve(config, warning))
    _say("stopped")
    return 0


async def _serve(config: SimConfig, warning: str | None) -> None:
    import asyncio
    import signal

    from proxy.sim.outlet import OutletSimulator, SimError

    sim = OutletSimulator(config, on_event=_say)
    try:
        await sim.start()
    except SimError as exc:
        raise UserError(str(exc)) from None
    if warning:
        print(f"invisproxy sim: warning: {warning}", file=sys.stderr, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    _say("Ctrl-C to stop")
    try:
        await stop.wait()
    finally:
        loop.remove_signal_handler(signal.SIGTERM)
        await sim.stop()


def _say(line: str) -> None:
    import time

    stamp = time.strftime("%H:%M:%S")
    print(f"{stamp} {line}", file=sys.stdout, flush=True)
