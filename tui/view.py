"""Which timeline rows are on show: the analysis' rows through a filter and a session.

Kept free of Textual. The analysis' ``rows`` list only grows, so the view keeps a
cursor into it and evaluates the filter on new rows in bounded slices (``sync`` with a
time budget): a filter over a million rows never freezes the screen, it fills in.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Sequence

from proxy.core.filter import Filter, TextOf
from proxy.core.model import Message, OtaSession, Row


def session_messages(session: OtaSession) -> frozenset[int]:
    """An OTA update's messages with the request that started it (a view of one update)."""
    ids = set(session.messages)
    if session.request is not None:
        ids.add(session.request)
    return frozenset(ids)


class RowView:
    """Positions on screen -> indices into ``rows``.

    With no filter and no session the view is the identity and costs nothing per row.
    """

    def __init__(
        self,
        rows: Sequence[Row],
        messages: Sequence[Message],
        text_of: TextOf,
        flt: Filter | None = None,
        session: frozenset[int] | None = None,
    ) -> None:
        self.rows = rows
        self.messages = messages
        self.text_of = text_of
        self.filter = flt if flt is not None and not flt.is_empty else None
        self.session = session
        self.indices: list[int] = []
        self.scanned = 0

    @property
    def is_identity(self) -> bool:
        return self.filter is None and self.session is None

    @property
    def complete(self) -> bool:
        return self.scanned >= len(self.rows)

    def __len__(self) -> int:
        return self.scanned if self.is_identity else len(self.indices)

    def row_index(self, position: int) -> int:
        return position if self.is_identity else self.indices[position]

    def position_of(self, row_index: int) -> int | None:
        """Where a row is on show, or None when the view hides it."""
        if self.is_identity:
            return row_index if row_index < self.scanned else None
        pos = bisect_left(self.indices, row_index)
        if pos < len(self.indices) and self.indices[pos] == row_index:
            return pos
        return None

    def nearest_position(self, row_index: int) -> int:
        """The shown row at or after ``row_index`` (or the last one)."""
        if self.is_identity:
            return min(row_index, max(self.scanned - 1, 0))
        pos = bisect_left(self.indices, row_index)
        return min(pos, max(len(self.indices) - 1, 0))

    def matches(self, index: int) -> bool:
        row = self.rows[index]
        msg = self.messages[row.ref] if row.ref >= 0 else None
        if self.session is not None and (msg is None or msg.id not in self.session):
            return False
        return self.filter is None or self.filter(row, msg, self.text_of)

    def sync(self, budget: float | None = None) -> bool:
        """Take in rows added since the last call; True when caught up.

        ``budget`` (seconds) bounds the work; rows left over are taken next time.
        """
        total = len(self.rows)
        if self.is_identity:
            self.scanned = total
            return True
        deadline = None if budget is None else time.perf_counter() + budget
        i = self.scanned
        indices = self.indices
        while i < total:
            stop = min(total, i + 2048)
            indices.extend(j for j in range(i, stop) if self.matches(j))
            i = stop
            if deadline is not None and time.perf_counter() > deadline:
                break
        self.scanned = i
        return i >= total


class MessageRows:
    """Message id -> row index, for jumps to messages the view may hide."""

    def __init__(self, rows: Sequence[Row]) -> None:
        self.rows = rows
        self.index: list[int] = []
        self._mapped = 0

    def row_of(self, msg_id: int) -> int | None:
        return self.index[msg_id] if 0 <= msg_id < len(self.index) else None

    def sync(self) -> None:
        rows = self.rows
        index = self.index
        for i in range(self._mapped, len(rows)):
            ref = rows[i].ref
            if ref >= 0:
                while len(index) <= ref:
                    index.append(i)
                index[ref] = i
        self._mapped = len(rows)
