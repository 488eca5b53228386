"""Wire events: what the relay saw, and nothing more.

Raw is truth (DESIGN 1.1): a capture is a list of these; decoding, annotation and
correlation are computed from them and never stored in their place.

Events are never changed once made. They are not ``frozen`` dataclasses only because
frozen construction costs three times as much, and a large capture makes millions.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Final, Literal, get_args

Transport = Literal["tcp", "ws"]
Side = Literal["app", "outlet"]
Closer = Literal["app", "outlet", "proxy"]

TRANSPORTS: Final = ("tcp", "ws")
SIDES: Final = ("app", "outlet")
CLOSERS: Final = ("app", "outlet", "proxy")

T_MAX: Final = 32503680000.0
"""Events are timed in seconds from 0 (synthetic traces, relative captures) up to the Unix
time of 3000-01-01 (recordings): readers refuse any other ``t`` (NaN, infinities, negative,
1e20 from a bit flip), so a time is always one the clock functions below can show."""

_WALL_CLOCK_FROM: Final = 1e9
"""From here on (2001-09) a time is a wall-clock recording, below it seconds of a trace."""


@dataclass(slots=True)
class Open:
    """A connection from an app to the outlet was established through the relay."""

    t: float
    conn: str
    """The connection's id, unique within the recording."""
    transport: Transport
    app: str
    """The app's address, host:port (DESIGN 4.1)."""
    outlet: str
    """The outlet's address, host:port."""


InterventionAction = Literal["drop", "delay", "close", "reply", "set", "edit", "hold", "inject"]
INTERVENTION_ACTIONS: Final[tuple[str, ...]] = get_args(InterventionAction)
InterventionBy = Literal["rule", "user"]
INTERVENTION_BY: Final[tuple[str, ...]] = get_args(InterventionBy)


@dataclass(frozen=True, slots=True)
class Intervention:
    """What the proxy did to a message instead of forwarding it as received.

    Rare (only rules and the user make them), so frozen. ``rule`` is the rule's label,
    ``held`` how long the message waited (delay, hold), ``why`` a sentence for people.
    """

    action: InterventionAction
    by: InterventionBy
    rule: str | None = None
    held: float | None = None
    why: str | None = None

    def as_record(self) -> dict[str, object]:
        """As DESIGN 4.1 spells it (captures, traces, ``analyze --json``): the four keys
        always, null when unknown; ``why`` only when there is one."""
        out: dict[str, object]
        out = {"action": self.action, "by": self.by, "rule": self.rule, "held": self.held}
        if self.why is not None:
            out["why"] = self.why
        return out


@dataclass(slots=True)
class Data:
    """Bytes that crossed the wire in one direction.

    For TCP one recv() chunk, exactly as read (it may hold half a JSON object or
    several); for WebSocket one message. ``text`` says how the bytes travel in a
    trace: for WebSocket it is the message type (text or binary frame), for TCP it is
    whether the chunk was valid UTF-8 when it was recorded. ``injected`` marks bytes
    the user injected rather than bytes an endpoint sent. ``intervention`` says what
    the proxy did instead of forwarding the bytes as received (DESIGN 4.1).
    """

    t: float
    conn: str
    side: Side
    data: bytes
    text: bool = True
    injected: bool = False
    intervention: Intervention | None = None
    original: bytes | None = None
    """What was received, when the proxy forwarded something else (``data``)."""


@dataclass(slots=True)
class Close:
    """A connection ended; ``by`` is who closed it, when known."""

    t: float
    conn: str
    by: Closer | None = None
    error: str | None = None


Event = Open | Data | Close


def is_utf8(data: bytes) -> bool:
    """Whether a TCP chunk can travel as ``text`` in a trace without loss."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def time_ok(t: float) -> bool:
    """Whether ``t`` is a time an event can have (0 <= t < T_MAX; False for NaN)."""
    return 0.0 <= t < T_MAX


def clock_text(t: float) -> str:
    """``t`` as local ``HH:MM:SS.mmm``; total: a time no clock can show (NaN, 1e20, which
    no reader lets through) falls back to :func:`seconds_text` instead of raising."""
    if not time_ok(t):
        return seconds_text(t)
    whole = math.floor(t)
    try:
        stamp = time.strftime("%H:%M:%S", time.localtime(whole))
    except (OverflowError, OSError, ValueError):  # a platform with a narrower time_t
        return seconds_text(t)
    return f"{stamp}.{int((t - whole) * 1000):03d}"


def seconds_text(t: float, width: int = 0) -> str:
    """``t`` in seconds with milliseconds, right-aligned to ``width``; total and short
    (1.99e139 stays a few characters instead of 140 digits)."""
    if -1e12 < t < 1e12:
        return f"{t:{width}.3f}"
    return f"{t:{width}.4g}"


def time_label(t: float) -> str:
    """The one way a time is shown alone: the wall clock for recordings (``t`` past 2001),
    ``t=1.250s`` for synthetic traces whose clock starts near 0. Never raises."""
    if _WALL_CLOCK_FROM < t < T_MAX:
        return clock_text(t)
    return f"t={seconds_text(t)}s"


def column_label(t: float) -> str:
    """:func:`time_label` for a time column: seconds padded to 9 characters, no ``t=``."""
    if _WALL_CLOCK_FROM < t < T_MAX:
        return clock_text(t)
    return seconds_text(t, 9)
