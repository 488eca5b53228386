"""Keys are handled one at a time, in the order they were typed.

Textual routes a key to the focused widget when the key is read, and runs a binding
only once the key has bubbled back up to the app; meanwhile the widget goes on with
the keys behind it. Keys read in one batch (typed while a big capture loads, pasted,
sent by tmux) were therefore handled out of order: ``f`` then ``cb:21`` went to the
timeline as commands before ``f`` had opened the filter line, a Backspace or Ctrl+U in
the line acted after the characters typed behind it, and keys after Enter went into
the line being closed. :class:`KeyOrder` lets a key in only once the one before it
has gone all the way up; :func:`focus_now` moves the focus at once
(``Widget.focus()`` waits behind the queue).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

from textual import events
from textual.dom import DOMNode
from textual.timer import Timer
from textual.widget import Widget

Typed = events.Key | events.Paste
"""What the terminal types: keys, and a bracketed paste (it must not overtake them)."""

HOLD_AT_MOST = 1.0
"""Seconds the next key waits if the one before it never comes back (a safety net)."""
CHECK_EVERY = 0.25


def focus_now(widget: Widget) -> None:
    """Give ``widget`` the focus at once, so the keys queued behind this one reach it."""
    if widget.is_attached and widget.focusable:
        widget.screen.set_focus(widget)
    else:
        widget.focus()  # not on a screen yet: Textual focuses it once it can


class KeyOrder:
    """Lets keys into the app one at a time.

    A key in flight is followed up the way it bubbles: once each node on the way has
    handled it, a callback is queued behind it at the next node, and at the app one
    more turn of the queue lets the focus a binding moved settle. Only then is the next
    key read. :meth:`hold` keeps the gate shut past that, until :meth:`release` (the
    query line closing on Enter says so when its Submitted message has been handled).
    """

    def __init__(
        self,
        read: Callable[[Typed], object],
        every: Callable[[Callable[[], None]], Timer],
        clock: Callable[[], float] = time.monotonic,
    ):
        """``read`` hands a waiting key to the app again; ``every`` starts a timer that
        calls its argument a few times a second (the safety net, only while keys wait)."""
        self._read = read
        self._every = every
        self._clock = clock
        self._waiting: deque[Typed] = deque()
        self._again: Typed | None = None  # handed back to the app, not seen since
        self._busy = False
        self._held = False
        self._since = 0.0  # when the key in flight was let in, or the hold began
        self._net: Timer | None = None

    def admit(self, key: Typed) -> bool:
        """Whether ``key`` may be handled now; if not it waits its turn."""
        if key is self._again:
            self._again = None
        elif self._busy or self._held or self._again is not None or self._waiting:
            self._waiting.append(key)
            if self._net is None:
                self._net = self._every(self._check)
            return False
        self._busy = True
        self._since = self._clock()
        return True

    def follow(self, path: list[DOMNode]) -> None:
        """The admitted key was sent to ``path[0]`` and may bubble along the rest (up to
        the app, last): the next key is let in once it has been everywhere."""

        def hop(i: int) -> None:
            if i + 1 < len(path):
                path[i + 1].call_later(hop, i + 1)
            else:
                path[-1].call_later(self.done)  # a binding's deferred focus goes first

        path[0].call_later(hop, 0)

    def done(self) -> None:
        """The admitted key has been handled."""
        self._busy = False
        self._next()

    def hold(self) -> None:
        """Keep the next keys out until :meth:`release`, even once this one is done."""
        self._held = True
        self._since = self._clock()

    def release(self) -> None:
        self._held = False
        self._next()

    def _check(self) -> None:
        """The safety net: a key in flight (or a hold) that never ended lets the others
        in after HOLD_AT_MOST seconds instead of keeping them forever."""
        if (self._busy or self._held) and self._clock() - self._since > HOLD_AT_MOST:
            self._busy = self._held = False
            self._next()

    def _next(self) -> None:
        if not self._busy and not self._held and self._again is None and self._waiting:
            self._again = self._waiting.popleft()
            self._read(self._again)
        if not self._waiting and self._net is not None:
            self._net.stop()
            self._net = None
