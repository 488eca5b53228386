"""A stand-in relay for the TUI's intervention tests: real ``Interventions``, a wire in
memory. What it records goes to the app's live source, as the relay's sinks do."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from proxy.core.events import Event, Side
from proxy.core.rules import RuleSet
from proxy.mitm.intervene import Interventions
from tui.sources import LiveSource


class RecordingWire:
    """What ``Interventions`` asks of the relay, done in memory."""

    def __init__(self, source: LiveSource, clock: Callable[[], float] = time.time) -> None:
        self.source = source
        self.clock = clock
        self.sent: list[tuple[str, Side, bytes]] = []
        self.closed: list[str] = []
        self.events: list[Event] = []

    def send(self, conn: str, to: Side, data: bytes, text: bool) -> bool:
        self.sent.append((conn, to, data))
        return True

    def close(self, conn: str) -> None:
        self.closed.append(conn)

    def emit(self, event: Event) -> None:
        self.events.append(event)
        self.source.push(event)

    def now(self) -> float:
        return self.clock()


class Control:
    """The relay's control surface: its interventions and injection (as the addon's
    ``inject`` does it)."""

    def __init__(self, wire: RecordingWire, rules: RuleSet | None = None) -> None:
        self.wire = wire
        self.interventions = Interventions(wire, rules)
        self.injected: list[tuple[str, Side, bytes]] = []

    def inject(self, conn: str, to: Side, data: bytes, *, text: bool = True) -> None:
        self.injected.append((conn, to, data))
        iv = self.interventions
        if not iv.inject(conn, to, data, text):  # not gated: sent and recorded as is
            self.wire.sent.append((conn, to, data))
            self.wire.emit(iv.injected(conn, to, data, text))


def frame(cb: int, pid: int, args: list[int] | None = None) -> bytes:
    payload: dict[str, object] = {"callbackName": cb}
    if args is not None:
        payload["callbackArgs"] = args
    return json.dumps({"packetID": pid, "payload": payload}).encode() + b"\n"


def app_sends(control: Control, data: bytes, conn: str = "c1") -> bytes:
    """The app sends ``data`` through the gate: what goes on at once (also on the wire)."""
    out = control.interventions.on_data(conn, "app", data, True) or b""
    if out:
        control.wire.sent.append((conn, "outlet", out))
    return out
