"""Push copy detection: the outlet sends each OTA push to every connected app.

The same bytes from the same outlet on another connection a moment later (or later
still, while the update it belongs to is open) are a copy, not news: a copy of a result
must not start a phantom update, a copy of a progress push must not count twice.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence

from proxy.core.model import Message

# The outlet pushes each OTA message to every connected app, a moment apart.
COPY_WINDOW = 2.0


class PushCopies:
    """Recent OTA pushes by (outlet, bytes), forgotten once no copy can match them.

    ``recent`` maps each to (message id, time) of its first sending (a bounded analysis
    keeps those messages).
    """

    __slots__ = ("_order", "horizon", "recent")

    def __init__(self, stall_window: float) -> None:
        # a copy of a push whose update is open may come up to a stall window late
        self.horizon = max(COPY_WINDOW, stall_window)
        self.recent: dict[tuple[str, bytes], tuple[int, float]] = {}
        self._order: deque[tuple[float, tuple[str, bytes]]] = deque()

    def original_of(
        self,
        device: str,
        msg: Message,
        messages: Sequence[Message],
        still_open: Callable[[int], bool],
    ) -> Message | None:
        """The same push sent earlier to another app's connection, if any; else ``msg``
        is remembered as an original. ``still_open(id)``: whether the update message
        ``id`` belongs to still takes messages (a late copy then still counts)."""
        key = (device, msg.raw.strip())
        seen = self.recent.get(key)
        if seen is not None:
            original = messages[seen[0]]
            if original.conn != msg.conn and (
                msg.t - seen[1] <= COPY_WINDOW or still_open(original.id)
            ):
                return original
        self.recent[key] = (msg.id, msg.t)
        order = self._order
        order.append((msg.t, key))
        horizon = msg.t - self.horizon
        while order and order[0][0] < horizon:
            t, old = order.popleft()
            if self.recent.get(old, (0, None))[1] == t:
                del self.recent[old]
        return None
