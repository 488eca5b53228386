"""`invisproxy sim`: run the outlet simulator in the foreground until Ctrl-C."""

from __future__ import annotations

import contextlib
import sys
from typing import TYPE_CHECKING, Any, Literal

import click

from proxy.cli.options import (
    NON_NEGATIVE,
    Choices,
    Decorator,
    InvisCommand,
    listener_options,
)
from proxy.core.errors import UserError
from proxy.net.addresses import Listener
from proxy.net.listen import listen_warning

if TYPE_CHECKING:
    from proxy.sim.outlet import Fault, SimConfig

Revision = Literal["A", "B"]

DEFAULT_TCP_PORT = 3333
DEFAULT_WS_PORT = 8080


class _FaultType(click.ParamType["Fault"]):
    """``refuse``, ``fail-at:N`` or ``stall-at:N``, parsed by the simulator's own rules."""

    name = "fault"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> Fault:
        from proxy.sim.outlet import Fault

        if isinstance(value, Fault):
            return value
        try:
            return Fault.parse(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


class _FaultTimes(click.ParamType[int | Literal["always"]]):
    """A count of 1 or more, or ``always``."""

    name = "count"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> int | Literal["always"]:
        if isinstance(value, int):
            number = value
        elif str(value).strip().lower() == "always":
            return "always"
        else:
            try:
                number = int(value)
            except ValueError:
                number = 0
        if number < 1:
            self.fail(f"expected a count of 1 or more, or 'always': {value!r}", param, ctx)
        return number


FAULT = _FaultType()


def _version(flag: str, what: str, default: str, extra: str = "") -> Decorator:
    """A firmware version option: ``--fw 0.0.1`` and the like."""
    return click.option(
        flag, metavar="VERSION", default=default, help=f"{what} (default {default}{extra})"
    )


@click.command(
    "sim",
    cls=InvisCommand,
    short_help="run a simulated InvisOutlet (raw TCP and WebSocket /ws) with a realistic OTA",
    help=(
        "Run a fake InvisOutlet that answers every callback of the local API on raw TCP "
        "and on a WebSocket at /ws, pushes sensor readings, and acts out firmware "
        "updates the way the real device does: revA acknowledges cb21, revB restarts "
        "at once and answers on the next connection; every outlet update ends in a "
        "reboot. The WebSocket listens on 8080 by default, not the device's 80, "
        "because port 80 needs root. Prints one line per connection and OTA step; "
        "Ctrl-C stops it."
    ),
)
@click.option("--rev", type=Choices(("A", "B")), default="B", help="hardware revision (default B)")
@listener_options(
    tcp_default=DEFAULT_TCP_PORT, ws_default=DEFAULT_WS_PORT, host_alias=True, can_disable=None
)
@click.option("--serial", metavar="SN", help="serial number (default depends on --rev)")
@_version("--fw", "running outlet firmware", "0.0.1")
@_version("--fw-available", "outlet firmware on offer", "0.0.2")
@_version("--www-fw", "running web-UI partition", "0.1.2")
@_version(
    "--www-fw-available", "web-UI partition on offer", "0.3.0",
    "; equal to --www-fw skips the WWW phase",
)  # fmt: skip
@_version("--deco-fw", "running faceplate firmware", "0.5.0")
@_version("--deco-fw-available", "faceplate firmware on offer", "0.5.1")
@click.option(
    "--ota-seconds",
    type=NON_NEGATIVE,
    default=8.0,
    metavar="S",
    help="total time of an update's progress phases (default 8)",
)
@click.option(
    "--reboot-seconds",
    type=NON_NEGATIVE,
    default=3.0,
    metavar="S",
    help="down time after a successful update or a restart (default 3)",
)
@click.option(
    "--restart-seconds",
    type=NON_NEGATIVE,
    default=1.0,
    metavar="S",
    help="revB: down time of the restart that follows cb21 (default 1)",
)
@click.option(
    "--sensor-interval",
    type=NON_NEGATIVE,
    default=5.0,
    metavar="S",
    help="seconds between cb11 sensor pushes; 0 turns them off (default 5)",
)
@click.option(
    "--fault",
    type=FAULT,
    metavar="F",
    help=(
        "misbehave during the next update (only that one, unless --fault-times): "
        "refuse, fail-at:N or stall-at:N (N in %)"
    ),
)
@click.option(
    "--fault-times",
    type=_FaultTimes(),
    metavar="N|always",
    help=(
        "act the --fault out on the next N updates (default 1) or on every one "
        "(always); a request refused for its own reason (already up to date, an "
        "update running, the deco offline) does not count"
    ),
)
@click.option(
    "--seed", type=int, metavar="N", help="seed for packetIDs, sensor noise and TCP merges/splits"
)
def command(
    rev: Revision,
    listener: Listener,
    serial: str | None,
    fw: str,
    fw_available: str,
    www_fw: str,
    www_fw_available: str,
    deco_fw: str,
    deco_fw_available: str,
    ota_seconds: float,
    reboot_seconds: float,
    restart_seconds: float,
    sensor_interval: float,
    fault: Fault | None,
    fault_times: int | Literal["always"] | None,
    seed: int | None,
) -> int:
    import dataclasses

    from proxy.sim.outlet import SimConfig
    from proxy.sim.state import Firmware

    if fault_times is not None:
        if fault is None:
            raise UserError("--fault-times needs a --fault to act out")
        fault = dataclasses.replace(fault, times=None if fault_times == "always" else fault_times)
    config = SimConfig(
        revision=rev,
        listener=listener,
        serial=serial,
        firmware=Firmware(
            im=fw,
            im_available=fw_available,
            www=www_fw,
            www_available=www_fw_available,
            pm=deco_fw,
            pm_available=deco_fw_available,
        ),
        ota_seconds=ota_seconds,
        reboot_seconds=reboot_seconds,
        restart_seconds=restart_seconds,
        sensor_interval=sensor_interval,
        fault=fault,
        seed=seed,
    )
    return run(config)


def register(group: click.Group) -> None:
    group.add_command(command)


def run(config: SimConfig) -> int:
    import asyncio

    warning = listen_warning(config.listener.host, "the simulator")
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
