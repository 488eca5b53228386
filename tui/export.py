"""The timeline's rows on show as events, for the store's trace writer.

A trace has one writer (``proxy.store.trace``) and one redaction (``proxy.store.redact``);
the TUI only chooses the events. A row is a message (a frame), so a filtered export
holds one data event per message on show, not the recorded chunks around it; opens and
closes keep who closed a connection and why, and injected and intervened messages stay
marked (a changed one with what was forwarded and what was received, as recorded).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, cast

from proxy.core.events import CLOSERS, Close, Closer, Data, Event, Open, is_utf8

if TYPE_CHECKING:
    from proxy.core.analysis import Analysis


def visible_events(analysis: Analysis, row_indices: Iterable[int]) -> list[Event]:
    """Events for the rows ``row_indices`` (in order), each connection opened first."""
    events: list[Event] = []
    opened: set[str] = set()
    last_t = 0.0
    for ri in row_indices:
        row = analysis.rows[ri]
        conn = analysis.connections.get(row.conn)
        if conn is not None and row.conn not in opened:
            opened.add(row.conn)
            # a connection first shown by a later row opens no earlier than what is
            # already written: a trace's times never go back
            t = row.t if row.kind == "open" else max(conn.opened, last_t)
            events.append(Open(t, conn.conn, conn.transport, conn.app, conn.outlet))
            last_t = max(last_t, t)
        if row.kind == "open":
            continue
        if row.kind == "close":
            by = conn.closed_by if conn is not None and conn.closed_by in CLOSERS else None
            error = conn.error if conn is not None else None
            events.append(Close(row.t, row.conn, cast(Closer | None, by), error))
        else:
            msg = analysis.messages[row.ref]
            text = is_utf8(msg.raw)
            mark, sent = msg.intervention, msg.forwarded
            if mark is None:
                events.append(Data(msg.t, msg.conn, msg.side, msg.raw, text, msg.injected))
            elif sent is None:
                events.append(Data(msg.t, msg.conn, msg.side, msg.raw, text, msg.injected, mark))
            else:  # set/edit: the event holds what was forwarded, beside what was received
                events.append(
                    Data(msg.t, msg.conn, msg.side, sent, text, msg.injected, mark, msg.raw)
                )
        last_t = max(last_t, row.t)
    return events
