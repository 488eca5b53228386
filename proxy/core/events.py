"""Wire events: what the relay saw, and nothing more.

Raw is truth (DESIGN 1.1): a capture is a list of these; decoding, annotation and
correlation are computed from them and never stored in their place.

Events are never changed once made. They are not ``frozen`` dataclasses only because
frozen construction costs three times as much, and a large capture makes millions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

Transport = Literal["tcp", "ws"]
Side = Literal["app", "outlet"]
Closer = Literal["app", "outlet", "proxy"]

TRANSPORTS: Final = ("tcp", "ws")
SIDES: Final = ("app", "outlet")
CLOSERS: Final = ("app", "outlet", "proxy")


@dataclass(slots=True)
class Open:
    """A connection from an app to the outlet was established through the relay."""

    t: float
    conn: str
    transport: Transport
    app: str
    outlet: str


@dataclass(slots=True)
class Data:
    """Bytes that crossed the wire in one direction.

    For TCP one recv() chunk, exactly as read (it may hold half a JSON object or
    several); for WebSocket one message. ``text`` says how the bytes travel in a
    trace: for WebSocket it is the message type (text or binary frame), for TCP it is
    whether the chunk was valid UTF-8 when it was recorded. ``injected`` marks bytes
    the user injected rather than bytes an endpoint sent.
    """

    t: float
    conn: str
    side: Side
    data: bytes
    text: bool = True
    injected: bool = False


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
