"""Cut each direction's byte stream into JSON values (frames).

CONTRACT (implementation pending): see the docstrings below.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from proxy.events import Event, Side


@dataclass(slots=True)
class Frame:
    """One JSON value cut from a direction's stream, or a run of bytes that is not one.

    ``error`` is None for a valid JSON value (``value`` holds it, of any JSON type);
    otherwise ``value`` is None and ``error`` says what is wrong with ``raw``.
    ``t`` is the time of the data event that completed the frame.
    """

    t: float
    conn: str
    side: Side
    raw: bytes
    value: Any
    error: str | None = None
    injected: bool = False


class Framer:
    """Turns events into frames, keeping one splitter per (connection, side)."""

    def __init__(self, max_value_bytes: int = 1 << 20) -> None:
        raise NotImplementedError

    def feed(self, event: Event) -> list[Frame]:
        raise NotImplementedError
