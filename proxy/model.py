"""What the analysis says about the wire: messages, annotations, links, OTA sessions.

These are derived data (DESIGN 3): recomputed from the events whenever a capture is
opened, so they can change shape without breaking old captures. The JSON form of
``analyze --json`` (DESIGN 4.4) is produced from them in ``analysis.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from proxy.events import Side, Transport

Kind = Literal["request", "response", "push", "invalid"]
Severity = Literal["info", "warning", "error"]
Relation = Literal["response", "ota-ack", "ota-sync", "ota-progress", "ota-result", "ota-verify"]
Target = Literal["outlet", "deco"]
Method = Literal["wifi", "via-outlet"]
Outcome = Literal["succeeded", "failed", "refused", "stalled", "in-progress"]


@dataclass(frozen=True, slots=True)
class Annotation:
    """A remark on one message: a stable ``code``, how bad it is, and a sentence."""

    code: str
    severity: Severity
    text: str


@dataclass(slots=True, eq=False)
class Message:
    """One decoded frame.

    ``kind`` is provisional when decoded (app frames are requests, outlet frames
    pushes) and settled by the analysis, which turns a push into a ``response`` when
    it answers a request on the same connection. ``args`` is ``callbackArgs`` exactly
    as sent (None when absent); ``raw`` is the frame's bytes.
    """

    id: int
    t: float
    conn: str
    transport: Transport
    side: Side
    kind: Kind
    callback: int | None
    name: str
    packet_id: Any
    sn: Any
    puback: Any
    args: Any
    raw: bytes
    annotations: list[Annotation] = field(default_factory=list)
    injected: bool = False

    def annotate(self, code: str, severity: Severity, text: str) -> None:
        self.annotations.append(Annotation(code, severity, text))

    def has(self, code: str) -> bool:
        return any(a.code == code for a in self.annotations)


@dataclass(frozen=True, slots=True)
class Link:
    """From an earlier message to a later one, with why they belong together."""

    src: int
    dst: int
    relation: Relation
    reason: str


@dataclass(slots=True, eq=False)
class OtaSession:
    """One firmware update and every message it caused."""

    target: Target
    request: int | None = None
    method: Method | None = None
    outcome: Outcome = "in-progress"
    messages: list[int] = field(default_factory=list)
    # (t, device_type, percent)
    progress: list[tuple[float, int, int]] = field(default_factory=list)
    fw_before: str | None = None
    fw_expected: str | None = None
    fw_after: str | None = None
    verified: bool | None = None
    reason: str = ""
    # Bookkeeping the correlator needs; not part of the public JSON.
    started: float = 0.0
    last_activity: float = 0.0
    ended: float | None = None
    phase: str = "requested"
    restarts: int = 0
    rebooted_after_result: bool = False
    sn: Any = None
    outlet_addr: str | None = None


@dataclass(slots=True)
class Connection:
    """A connection's lifetime as the analysis knows it."""

    conn: str
    transport: Transport
    app: str
    outlet: str
    opened: float
    closed: float | None = None
    closed_by: str | None = None
    error: str | None = None


RowKind = Literal["open", "close", "message"]


@dataclass(frozen=True, slots=True)
class Row:
    """One line of the timeline: a message, or a connection opening or closing.

    ``ref`` is the message id for message rows and -1 otherwise.
    """

    t: float
    kind: RowKind
    conn: str
    ref: int
