"""The app's view of a capture with interventions: the second truth (DESIGN 4.4 end).

The main analysis says what the outlet did: it decodes what each side sent. When a rule
or the user dropped, changed or answered messages, the app saw something else. Its view
is the subsequence of messages that reached it (or that it sent), with the bytes it got:

- app-side messages it sent (not those the proxy injected toward the outlet);
- outlet-side messages that were forwarded (delayed and held ones too), with the bytes
  forwarded where they were changed (set, edit), and the proxy's own answers (``reply``
  rules, the user's injections toward the app); not dropped ones, not ones the proxy
  closed the connection on, not the swallowed replies to injected requests.

The same OTA state machine runs over that view (a second Analysis over synthesized
events), and its sessions are mapped back to the main ones by message id. Built only
when the capture holds interventions, and caught up only when the analysis changed.
"""

from __future__ import annotations

import re
from array import array
from bisect import bisect_right
from collections.abc import Container
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from proxy.core.events import Close, Data
from proxy.core.model import Message, OtaSession, intervention_head

if TYPE_CHECKING:
    from proxy.core.analysis.facade import Analysis

_NOT_SEEN: Final = ("drop", "close")
_MSG_REF: Final = re.compile(r"#(\d+)")


def app_bytes(msg: Message) -> bytes | None:
    """The bytes of ``msg`` the app sent or received, None when it never saw them."""
    if msg.kind == "invalid":
        return None  # nothing an update's state can hang on; kept out of the framing
    if msg.side == "app":
        return None if msg.injected else msg.raw
    mark = msg.intervention
    if mark is None:
        return msg.raw
    if mark.action in _NOT_SEEN:
        return None
    forwarded = msg.forwarded
    return msg.raw if forwarded is None else forwarded


class IdMap:
    """App-view message id -> the main analysis' id, kept as runs of consecutive ids.

    The two numberings differ only where the app saw nothing of a message (dropped,
    closed on, invalid) or saw one as several: a new run starts there, so the map stays
    small in a long run however much the analyses forget, and a reason may name any
    message, however old.
    """

    __slots__ = ("_mains", "_starts", "count")

    def __init__(self) -> None:
        self._starts = array("q")  # the first app-view id of each run
        self._mains = array("q")  # the main id it maps to
        self.count = 0

    def append(self, main_id: int) -> None:
        """The next app-view message is main message ``main_id``."""
        i = self.count
        if not self._starts or main_id - self._mains[-1] != i - self._starts[-1]:
            self._starts.append(i)
            self._mains.append(main_id)
        self.count = i + 1

    def get(self, i: int) -> int | None:
        if not 0 <= i < self.count:
            return None
        run = bisect_right(self._starts, i) - 1
        return self._mains[run] + (i - self._starts[run])

    def __getitem__(self, i: int) -> int:
        main_id = self.get(i)
        if main_id is None:
            raise IndexError(i)
        return main_id

    def __contains__(self, i: object) -> bool:
        return isinstance(i, int) and 0 <= i < self.count

    @property
    def runs(self) -> int:
        return len(self._starts)


@dataclass(slots=True)
class AppView:
    """The analysis of what the app saw, and where its messages are in the main one.

    Fed incrementally: what the app saw of a message is settled when the message is
    added (its side, mark and bytes never change), so each catch-up feeds only the rows
    added since the last one.
    """

    analysis: Analysis
    main_ids: IdMap = field(default_factory=IdMap)
    """``main_ids[i]``: the main analysis' id of the app view's message ``i``."""
    generation: int = -1
    rows_fed: int = 0
    started_at: int = 0
    """The first row fed: above 0 when a bounded analysis had already forgotten rows."""
    marked: dict[int, Message] = field(default_factory=dict)
    """The main analysis' messages with an intervention, by id: kept here, so that the
    sessions can be explained after a bounded analysis forgot them (few: only rules and
    the user make them)."""


def new(main: Analysis) -> AppView:
    """An empty app view with the main analysis' settings, and of its kind: a bounded
    analysis (``run --headless``) gets a bounded app view, so neither grows without end."""
    return AppView(main.empty_like())


def catch_up(main: Analysis, seen: AppView) -> None:
    """Feed ``seen`` the app's view of the rows ``main`` added since the last call."""
    view, ids, rows = seen.analysis, seen.main_ids, main.rows
    # a bounded analysis (run --headless) may have forgotten rows printed before the
    # first intervention: the app's view starts at the oldest row it still holds
    if seen.rows_fed == 0:
        seen.started_at = seen.rows_fed = rows.first_held()
    for ri in range(seen.rows_fed, len(rows)):
        row = rows[ri]
        info = main.connections.get(row.conn)
        if row.kind == "open":
            if info is not None:
                view.feed(info.open_event(row.t))
        elif row.kind == "close":
            view.feed(info.close_event(row.t) if info is not None else Close(row.t, row.conn))
        else:
            msg = main.messages[row.ref]
            if msg.intervention is not None:
                seen.marked[msg.id] = msg
            data = app_bytes(msg)
            if data is None:
                continue
            before = len(view.messages)
            view.feed(Data(msg.t, msg.conn, msg.side, data, True, msg.injected))
            for _ in range(before, len(view.messages)):
                ids.append(msg.id)
    seen.rows_fed = len(rows)
    if main.finished:
        view.finish()
    elif main.last_t is not None:
        view.advance(main.last_t)
    seen.generation = main.generation


def apply(main: Analysis, seen: AppView) -> None:
    """Set ``app_outcome`` / ``app_reason`` on each of ``main``'s sessions an intervention
    touched, from the app view's session that began with the same message."""
    ids = seen.main_ids
    by_start: dict[int, OtaSession] = {}
    for s in seen.analysis.sessions:
        start = s.request if s.request is not None else (s.messages[0] if s.messages else None)
        if start is not None and start in ids:
            by_start.setdefault(ids[start], s)
    for session in main.sessions:
        marked = _marked(seen, session)
        if not marked:
            session.app_outcome = session.app_reason = None
            continue
        app = _counterpart(session, by_start)
        if app is None:
            continue  # a bounded app view forgot it once settled: what it said stands
        reason = _MSG_REF.sub(lambda m: _main_ref(m, ids), app.reason)
        what = _grouped(marked)
        session.app_outcome = app.outcome
        partial = (
            f"; worked out from row {seen.started_at} on, the earlier ones already forgotten"
            if seen.started_at
            else ""
        )
        session.app_reason = f"{reason} (the app saw this because {what}{partial})"


def _marked(seen: AppView, session: OtaSession) -> list[Message]:
    ids = list(session.messages)
    if session.request is not None and session.request not in ids:
        ids.insert(0, session.request)
    return [seen.marked[i] for i in ids if i in seen.marked]


def _grouped(marked: list[Message]) -> str:
    """ "#4, #5 dropped by rule 1: ..." : one entry per distinct intervention (holds and
    delays with the longest wait, not one entry per message)."""
    groups: dict[str, list[Message]] = {}
    for m in marked:
        assert m.intervention is not None
        groups.setdefault(intervention_head(m.intervention), []).append(m)
    parts = []
    for head, msgs in groups.items():
        ids = [f"#{m.id}" for m in msgs]
        refs = ", ".join(ids) if len(ids) <= 4 else f"{ids[0]} … {ids[-1]} ({len(ids)} messages)"
        waits = [m.intervention.held for m in msgs if m.intervention and m.intervention.held]
        wait = f" (held up to {max(waits):.3f} s)" if waits else ""
        parts.append(f"{refs} {head}{wait}")
    return "; ".join(parts)


def _counterpart(session: OtaSession, by_start: dict[int, OtaSession]) -> OtaSession | None:
    """The app view's session that began where ``session`` did (its request, or for an
    update whose request is not in the capture, its first message the app saw)."""
    if session.request is not None:
        return by_start.get(session.request)
    for i in session.messages:
        if i in by_start:
            return by_start[i]
    return None


def _main_ref(m: re.Match[str], ids: IdMap) -> str:
    main_id = ids.get(int(m.group(1)))
    return m.group(0) if main_id is None else f"#{main_id}"


def forget(main: Analysis, seen: AppView, held: Container[int]) -> None:
    """Let go of the marks no held message or session names any more: called by a
    bounded analysis once it forgot messages (``held``: the ids of those it holds)."""
    named = {i for s in main.sessions for i in _session_ids(s)}
    seen.marked = {i: m for i, m in seen.marked.items() if i in held or i in named}


def _session_ids(session: OtaSession) -> list[int]:
    ids = list(session.messages)
    if session.request is not None:
        ids.append(session.request)
    return ids
