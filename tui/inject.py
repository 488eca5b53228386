"""What the inject editor starts from: a catalog callback's message, or a copy of one seen.

No Textual here. Each template is a message the outlet (or app) could really receive,
with a fresh six-digit packetID (the app's own IDs are six digits, README 4.2) so the
reply to it can be told from the app's traffic and linked to the injection.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Container, Iterator, Sequence
from typing import Any, Final

from proxy.core.events import Side
from proxy.core.model import Message
from proxy.core.protocol.catalog import CATALOG

# Arguments of a plausible message per callback, from the protocol's examples
# (docs/protocol/examples); callbacks without arguments are absent.
EXAMPLE_ARGS: Final[dict[int, list[Any]]] = {
    4: [{"accessory": 1, "name": "Fan"}],
    9: [1, 0],
    10: [1, 1],
    14: [1, 100],
    15: [1, 100],
    17: [5, 7, [[1, 100, [0, 0]], [1, 100, [320, 100]]], 0, 0],
    18: [5],
    21: [1, 0],
    22: [1, 40],
    23: [1, 1],
    26: [30],
    27: [0],
    28: [21500, 45000],
}
LOOK_BACK: Final = 10_000  # messages searched for the outlet's serial number


def fresh_packet_id(taken: Container[object], rng: Callable[[int, int], int] | None = None) -> int:
    """A six-digit packetID not in ``taken`` (the IDs seen on the connection)."""
    draw = rng or random.SystemRandom().randint
    for _ in range(1000):
        pid = draw(100000, 999999)
        if pid not in taken:
            return pid
    raise ValueError("no free six-digit packetID")


def callbacks(to: Side) -> Iterator[tuple[int, str]]:
    """(number, name) of the callbacks one may send toward ``to``."""
    for number, spec in CATALOG.items():
        if spec.app_sends if to == "outlet" else spec.outlet_pushes:
            yield number, spec.name


def template(callback: int, to: Side, packet_id: int, sn: str | None = None) -> str:
    """The editor's text for a catalog callback sent toward ``to``."""
    if callback not in CATALOG:
        raise ValueError(f"callback {callback} is not in the catalog")
    message: dict[str, Any] = {}
    if to == "app" and sn is not None:
        message["sn"] = sn
    message["packetID"] = packet_id
    payload: dict[str, Any] = {"callbackName": callback}
    args = EXAMPLE_ARGS.get(callback)
    if args:
        payload["callbackArgs"] = args
    message["payload"] = payload
    return json.dumps(message, indent=2)


def copy_of(msg: Message, packet_id: int) -> str:
    """The editor's text for a copy of ``msg`` with a fresh packetID.

    Raises ValueError when the message is not a JSON object (there is nothing to copy).
    """
    try:
        value = json.loads(msg.raw)
    except (ValueError, UnicodeDecodeError):
        raise ValueError("the selected message is not valid JSON; choose a callback") from None
    if not isinstance(value, dict):
        raise ValueError("the selected message is not a JSON object; choose a callback")
    value["packetID"] = packet_id
    return json.dumps(value, indent=2, ensure_ascii=False)


def last_sn(messages: Sequence[Message | None], conn: str) -> str | None:
    """The outlet's serial number as last seen on ``conn`` (its messages carry it),
    among the newest :data:`LOOK_BACK` messages."""
    for i in range(len(messages) - 1, max(len(messages) - LOOK_BACK, 0) - 1, -1):
        msg = messages[i]
        if msg is not None and msg.conn == conn and msg.side == "outlet" and msg.sn:
            return str(msg.sn)
    return None
