"""How the simulated outlet is set up: its revision, ports, timings and the fault to act out.

Plain data, apart from the simulator (proxy.sim.outlet) that acts it out, so that the
command line builds and checks it without the simulator's machinery.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Final, Literal

from proxy.net.addresses import Listener
from proxy.sim.state import Firmware

Revision = Literal["A", "B"]
FaultKind = Literal["refuse", "fail-at", "stall-at"]

DEFAULT_SERIALS: Final[dict[Revision, str]] = {"A": "0003C44076", "B": "11B27540076"}
_FAULT_RE: Final = re.compile(r"^(refuse)$|^(fail-at|stall-at):(\d{1,3})$")


@dataclass(frozen=True, slots=True)
class Fault:
    """A failure to act out during the next update, or the next ``times`` updates."""

    kind: FaultKind
    percent: int = 0
    times: int | None = 1
    """How many updates act it out, starting with the next one; None: every update."""

    @classmethod
    def parse(cls, text: str) -> Fault:
        """``refuse``, ``fail-at:N`` or ``stall-at:N`` (0 <= N <= 100)."""
        match = _FAULT_RE.match(text.strip())
        if match is None:
            raise ValueError(
                f"bad fault {text!r}: expected 'refuse', 'fail-at:N' or 'stall-at:N' (N = 0..100)"
            )
        if match.group(1):
            return cls("refuse")
        percent = int(match.group(3))
        if percent > 100:
            raise ValueError(f"bad fault {text!r}: the percentage must be 0..100")
        kind: FaultKind = "fail-at" if match.group(2) == "fail-at" else "stall-at"
        return cls(kind, percent)

    def __str__(self) -> str:
        return self.kind if self.kind == "refuse" else f"{self.kind}:{self.percent}"

    def describe(self) -> str:
        """The fault and how long it lasts, for the simulator's output."""
        if self.times is None:
            return f"{self} on every update"
        if self.times == 1:
            return f"{self} on the next update"
        return f"{self} on the next {self.times} updates"


ANY_FREE_PORT: Final = Listener(tcp_port=0, ws_port=0)
"""Where a simulator listens unless told: loopback, on ports the system picks."""


@dataclass(slots=True)
class SimConfig:
    """How the simulated outlet behaves."""

    revision: Revision = "B"
    listener: Listener = ANY_FREE_PORT
    serial: str | None = None
    firmware: Firmware = field(default_factory=Firmware)
    ota_seconds: float = 8.0
    """Total time of the progress phases of one update."""
    reboot_seconds: float = 3.0
    """Down time after a successful update, a cb5 restart, and of a rebooting deco."""
    restart_seconds: float = 1.0
    """Down time of the revB restart that follows the cb21 request."""
    sync_wait_seconds: float = 30.0
    """revB: how long the update waits for a client to reconnect and get the sync cb21."""
    sensor_interval: float = 5.0
    """Seconds between cb11 pushes; 0 turns them off."""
    fault: Fault | None = None
    seed: int | None = None
    progress_step: int = 10
    tcp_merge: float = 0.2
    """Chance that a queued TCP message is written together with the next, no delimiter."""
    tcp_split: float = 0.15
    """Chance that a TCP write is cut in two, with a drain and a short pause between."""
    split_pause: float = 0.005

    def serial_number(self) -> str:
        return self.serial or DEFAULT_SERIALS[self.revision]


@dataclass(slots=True)
class WireStats:
    """What the TCP writer did, so tests can tell merged and split writes happened."""

    writes: int = 0
    merged: int = 0
    split: int = 0
