"""Firmware tracking: what each outlet runs and offers, and whether an update took.

cb20 replies carry the running and the available firmware of each module (IM: the
outlet, PM: the deco), cb12 the running one; an update is verified by the first read
after its module's reboot (protocol/README 4). Pure functions and small records: the
OTA tracking decides when to ask.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from proxy.core.model import Connection, Message, OtaSession

FW_CALLBACKS = frozenset({12, 20})
# A deco that still reports its old firmware this long after a successful result, without
# ever having been seen down, did not take the update. Home Assistant re-reads at 10, 20,
# 30 ... s until the version changes, so an earlier old version only means "not yet".
DECO_REBOOT_GRACE = 60.0


def device_key(outlet_addr: str) -> str:
    """The outlet a connection reaches: its host, since TCP and WS use other ports."""
    host, sep, port = outlet_addr.rpartition(":")
    if sep and port.isdigit():
        return host.strip("[]")
    return outlet_addr


@dataclass(slots=True)
class Device:
    """What the analysis knows about one outlet."""

    key: str
    sn: Any = None
    # target -> (running fw, available fw), from the latest cb20/cb12
    firmware: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)
    open_conns: set[str] = field(default_factory=set)
    # target -> the latest cb20 reply that carried its block (what the outlet offered)
    offers: dict[str, Message] = field(default_factory=dict)
    # hardware revision "A"/"B" once the traffic shows it, and what showed it
    revision: str | None = None
    revision_why: str = ""


class Devices:
    """The outlets seen, by :func:`device_key` of the address each connection reaches."""

    __slots__ = ("_connections", "by_key")

    def __init__(self, connections: dict[str, Connection]) -> None:
        self._connections = connections
        self.by_key: dict[str, Device] = {}

    def of(self, conn: str) -> Device:
        """The outlet of a connection ("?" for one whose open is not in the capture)."""
        info = self._connections.get(conn)
        key = device_key(info.outlet) if info is not None else "?"
        device = self.by_key.get(key)
        if device is None:
            device = self.by_key[key] = Device(key)
        return device


def record(device: Device, msg: Message, versions: dict[str, tuple[Any, Any]]) -> None:
    """Remember the versions a cb12/cb20 reports (``versions`` from
    :func:`proxy.core.protocol.firmware_versions`), and a cb20 as the latest offer."""
    cb = msg.callback
    if msg.sn is not None:
        device.sn = msg.sn
    if cb == 20:
        for target in versions:
            device.offers[target] = msg
    for target, (running, available) in versions.items():
        known = device.firmware.get(target, (None, None))
        if cb == 12:
            device.firmware[target] = (running, known[1])
        else:
            device.firmware[target] = (running, available)


def after_reboot(session: OtaSession, msg: Message, info: Connection | None, running: str) -> bool:
    """Whether ``msg`` (on connection ``info``) reports the firmware the updated module
    runs after its reboot.

    The outlet proves its reboot by dropping its connections after the result (or by
    the cb12 it pushes on a connection opened afterwards); until then a read shows
    the old firmware. The deco reboots without dropping anything: a read that still
    shows the old version before the deco was seen down, and within
    DECO_REBOOT_GRACE of the result, is from before its reboot.
    """
    result_t = session.ended if session.ended is not None else session.last_activity
    if session.target == "outlet":
        if info is None:
            return False
        if session.reboot_t is not None and info.opened >= session.reboot_t:
            return True  # a connection made after the outlet went down
        # the cb12 the outlet pushes when it comes back, on a new connection
        return msg.kind == "push" and info.opened > result_t
    return (
        session.module_down_seen
        or (session.fw_before is not None and running != session.fw_before)
        or msg.t - result_t > DECO_REBOOT_GRACE
    )


def verdict(session: OtaSession, running: str) -> tuple[bool | None, str]:
    """Whether the firmware read after the reboot is the one the update offered
    (None: the offer is not in the capture), and the words for it."""
    if session.fw_expected is None:
        return None, "the expected version is unknown (no cb20 before the update)"
    if running == session.fw_expected:
        return True, f"it matches the expected {session.fw_expected}"
    return False, f"it is NOT the expected {session.fw_expected}"
