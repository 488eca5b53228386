"""Replay scripts: what a capture says the outlet did, in a form that can be done again.

mitmproxy cannot replay TCP or WebSocket flows (its issue 5248), and a byte-for-byte
replay would be useless here anyway: the app picks fresh packetIDs, and the OTA story
spans connections the outlet itself closes. So a capture is turned into a *script*
built from its analysis (DESIGN 1.2: the same pipeline as every other source):

- the app's requests, each with the outlet's replies (``response``/``ota-ack`` links)
  and how long they took;
- the outlet's *actions* on each recorded connection, pushes and outlet-side closes,
  each timed from an *anchor*: the request that caused it (the cb21 for everything its
  OTA session holds, cb10/14/17 for the cb9/15/18 push that follows) or, for pushes
  unrelated to requests such as cb11 sensors, the connection's opening;
- after each outlet-side close, how long the outlet stayed unreachable, as shown by the
  app's failed attempts to reconnect (the relay records those as connections it closed
  with "outlet unreachable").

``replay serve`` plays the outlet from a script and ``replay send`` plays the app; both
live in their own modules. This module has no sockets: matching live requests to
recorded ones is a pure function, tested as such, and so is diffing replies
(proxy.replay.diff).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from proxy.core.analysis import Analysis
from proxy.core.events import Transport
from proxy.core.model import Message
from proxy.replay.diff import _clip, _compact, _json_value

DESTRUCTIVE: Final = frozenset({5, 6, 7, 21, 24, 25, 26, 28})
"""Callbacks that restart, reset, update or recalibrate a device: ``send`` skips them."""

CAUSED_PUSHES: Final[Mapping[int, int]] = {10: 9, 14: 15, 17: 18}
"""A control request and the status push its change makes the outlet send."""

CAUSE_WINDOW: Final = 5.0
"""How soon after a control request its status push must come to be counted as caused."""

_UNREACHABLE: Final = "unreachable"

MatchHow = Literal["exact", "reused", "other-args"]


# ---------------------------------------------------------------------- the script


@dataclass(frozen=True, slots=True)
class RecordedReply:
    """One reply the outlet gave to a recorded request."""

    msg_id: int
    delay: float
    """Seconds after the request."""
    raw: bytes
    value: Any
    """The decoded JSON (None for a frame that is not JSON)."""
    echoes: bool
    """Whether it carries the request's packetID (then the live one is put in)."""


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request the app sent, and what the outlet answered."""

    msg_id: int
    t: float
    conn: str
    callback: int
    name: str
    args: Any
    packet_id: Any
    raw: bytes
    replies: tuple[RecordedReply, ...]

    @property
    def key(self) -> str:
        return args_key(self.args)

    def label(self) -> str:
        args = "" if self.args is None else " " + _clip(_compact(self.args), 40)
        return f"cb{self.callback}{args}"


@dataclass(frozen=True, slots=True)
class Action:
    """Something the outlet did on its own on one recorded connection: a push or a close.

    It happens ``delay`` seconds after its anchor: a recorded request (``anchor`` is its
    message id) once the live app sends the matching request, or the connection's
    opening (``anchor`` None). ``echoes``: a push that carried its anchor request's
    packetID (the revB synchronous cb21) gets the live request's instead. ``down``: how
    long the outlet stays unreachable after a close.
    """

    kind: Literal["push", "close"]
    conn: str
    t: float
    order: int
    anchor: int | None
    delay: float
    raw: bytes = b""
    callback: int | None = None
    echoes: bool = False
    down: float = 0.0


@dataclass(slots=True)
class RecordedConnection:
    """One connection on which the outlet answered (attempts that found it down are not)."""

    conn: str
    transport: Transport
    opened: float
    actions: list[Action] = field(default_factory=list)
    requests: list[int] = field(default_factory=list)
    """Message ids of the app's requests on it."""


@dataclass(slots=True)
class Script:
    """Everything a replay needs from one capture."""

    connections: list[RecordedConnection]
    requests: list[RecordedRequest]
    sn: Any = None
    failed_attempts: int = 0
    """Connection attempts recorded while the outlet was unreachable."""
    by_id: dict[int, RecordedRequest] = field(init=False)
    by_anchor: dict[int | None, list[Action]] = field(init=False)
    """The actions that wait for each anchor (None: their connection's opening)."""

    def __post_init__(self) -> None:
        self.by_id = {r.msg_id: r for r in self.requests}
        self.by_anchor = {}
        for c in self.connections:
            for action in c.actions:
                self.by_anchor.setdefault(action.anchor, []).append(action)

    @property
    def pushes(self) -> int:
        return sum(a.kind == "push" for c in self.connections for a in c.actions)

    @property
    def closes(self) -> int:
        return sum(a.kind == "close" for c in self.connections for a in c.actions)

    @property
    def transports(self) -> list[Transport]:
        seen: list[Transport] = []
        for c in self.connections:
            if c.transport not in seen:
                seen.append(c.transport)
        return seen

    def describe(self) -> str:
        kinds = "+".join(self.transports) or "no connections"
        return (
            f"{len(self.connections)} connection(s) ({kinds}), {len(self.requests)} request(s), "
            f"{self.pushes} push(es), {self.closes} outlet-side close(s)"
        )


def _is_failed_attempt(analysis: Analysis, conn: str, has_messages: bool) -> bool:
    info = analysis.connections[conn]
    return (
        not has_messages
        and info.closed_by == "proxy"
        and info.error is not None
        and _UNREACHABLE in info.error
    )


def build_script(analysis: Analysis) -> Script:
    """The replay script of an analysed capture."""
    msgs = analysis.messages
    by_conn: dict[str, list[Message]] = {}
    for m in msgs:
        by_conn.setdefault(m.conn, []).append(m)

    # requests and their replies
    reply_of: dict[int, int] = {}
    requests: list[RecordedRequest] = []
    for m in msgs:
        if m.side != "app" or m.kind != "request" or m.callback is None:
            continue
        replies = []
        for link in analysis.links_of(m.id):
            if link.src == m.id and link.relation in ("response", "ota-ack"):
                r = msgs[link.dst]
                reply_of[r.id] = m.id
                replies.append(
                    RecordedReply(
                        r.id,
                        max(0.0, r.t - m.t),
                        r.raw,
                        _json_value(r.raw),
                        r.packet_id is not None and r.packet_id == m.packet_id,
                    )
                )
        requests.append(
            RecordedRequest(
                m.id, m.t, m.conn, m.callback, m.name, m.args, m.packet_id, m.raw, tuple(replies)
            )
        )
    req_by_id = {r.msg_id: r for r in requests}

    sn = next((m.sn for m in msgs if m.side == "outlet" and m.sn is not None), None)

    # which session request (cb21) each OTA message hangs from
    session_anchor: dict[int, int] = {}
    for s in analysis.sessions:
        if s.request is None or s.request not in req_by_id:
            continue
        start = msgs[s.request].t
        for mid in s.messages:
            if mid != s.request and msgs[mid].t >= start:
                session_anchor[mid] = s.request

    conns = sorted(analysis.connections.values(), key=lambda c: c.opened)
    real: list[RecordedConnection] = []
    failed: list[tuple[float, float]] = []  # (opened, closed) of failed attempts
    for info in conns:
        conn_msgs = by_conn.get(info.conn, [])
        if _is_failed_attempt(analysis, info.conn, bool(conn_msgs)):
            failed.append((info.opened, info.closed if info.closed is not None else info.opened))
            continue
        real.append(RecordedConnection(info.conn, info.transport, info.opened))

    order = 0
    for rc in real:
        info = analysis.connections[rc.conn]
        conn_msgs = by_conn.get(rc.conn, [])
        last_event: tuple[float, int | None] | None = None  # (t, anchor) of the latest event
        for m in conn_msgs:
            if m.side == "app":
                if m.id in req_by_id:
                    rc.requests.append(m.id)
                    last_event = (m.t, m.id)
                continue
            if m.id in reply_of:
                last_event = (m.t, reply_of[m.id])
                continue
            anchor = session_anchor.get(m.id)
            if anchor is None and m.callback is not None:
                anchor = _cause_of(m, conn_msgs)
            base = msgs[anchor].t if anchor is not None else rc.opened
            echoes = (
                anchor is not None
                and m.packet_id is not None
                and m.packet_id == req_by_id[anchor].packet_id
            )
            rc.actions.append(
                Action(
                    "push",
                    rc.conn,
                    m.t,
                    order,
                    anchor,
                    max(0.0, m.t - base),
                    m.raw,
                    m.callback,
                    echoes,
                )
            )
            order += 1
            last_event = (m.t, anchor)
        if info.closed_by == "outlet" and info.closed is not None:
            anchor = last_event[1] if last_event is not None else None
            base = msgs[anchor].t if anchor is not None else rc.opened
            down = _down_time(info.closed, rc, real, failed)
            rc.actions.append(
                Action(
                    "close",
                    rc.conn,
                    info.closed,
                    order,
                    anchor,
                    max(0.0, info.closed - base),
                    down=down,
                )
            )
            order += 1
    return Script(real, requests, sn, len(failed))


def _cause_of(push: Message, conn_msgs: list[Message]) -> int | None:
    """The control request (cb10/14/17) on the same connection that this push reports on."""
    for m in reversed(conn_msgs):
        if m.t > push.t or m is push:
            continue
        if push.t - m.t > CAUSE_WINDOW:
            return None
        if (
            m.side == "app"
            and m.kind == "request"
            and CAUSED_PUSHES.get(m.callback or -1) == (push.callback)
        ):
            return m.id
    return None


def _down_time(
    closed: float,
    rc: RecordedConnection,
    real: list[RecordedConnection],
    failed: list[tuple[float, float]],
) -> float:
    """How long after ``closed`` the outlet was seen unreachable: until the last failed
    attempt before the next connection it answered (0 when no attempt failed)."""
    nxt = next((c.opened for c in real if c.opened >= closed and c is not rc), None)
    last = None
    for opened, ended in failed:
        if opened >= closed and (nxt is None or opened <= nxt):
            last = ended
    return 0.0 if last is None else max(0.0, last - closed)


# ---------------------------------------------------------------------- matching


def args_key(args: Any) -> str:
    """A canonical form of callbackArgs, so equal arguments compare equal."""
    return json.dumps(args, sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class Match:
    request: RecordedRequest
    how: MatchHow


class Matcher:
    """Finds the recorded request that answers a live one, consuming them in order.

    Preference: same callback and arguments not yet used, on the recorded connection the
    live one plays, then anywhere in recorded order; then the last one used again
    (``reused``: an app asking more often than recorded gets the latest answer); then the
    same callback with other arguments (``other-args``), in the same order.
    """

    def __init__(self, requests: Iterable[RecordedRequest]) -> None:
        self.requests = list(requests)
        self.consumed: set[int] = set()
        self._last_used: dict[tuple[int, str | None], RecordedRequest] = {}

    def match(self, callback: int, args: Any, conn: str | None = None) -> Match | None:
        key = args_key(args)
        exact = [r for r in self.requests if r.callback == callback and r.key == key]
        found = self._pick(exact, conn, callback, key)
        if found is not None:
            return Match(found[0], "exact" if found[1] else "reused")
        other = [r for r in self.requests if r.callback == callback and r.key != key]
        found = self._pick(other, conn, callback, None)
        if found is not None:
            return Match(found[0], "other-args")
        return None

    def _pick(
        self, candidates: list[RecordedRequest], conn: str | None, callback: int, key: str | None
    ) -> tuple[RecordedRequest, bool] | None:
        if not candidates:
            return None
        fresh = [r for r in candidates if r.msg_id not in self.consumed]
        chosen = next((r for r in fresh if r.conn == conn), None) or (fresh[0] if fresh else None)
        if chosen is not None:
            self.consumed.add(chosen.msg_id)
            self._last_used[(callback, key)] = chosen
            return chosen, True
        return self._last_used.get((callback, key), candidates[-1]), False


# ---------------------------------------------------------------------- packetIDs


def rewrite_packet_id(raw: bytes, old: Any, new: Any) -> bytes:
    """``raw`` with its top-level packetID ``old`` replaced by ``new`` (set, for ``old``
    None); a message carrying another packetID is left alone.

    The bytes are edited in place so the message keeps its exact formatting; a message
    whose packetID cannot be found that way is re-serialised.
    """
    if old == new:
        return raw
    pattern = rb'("packetID"\s*:\s*)' + re.escape(json.dumps(old).encode()) + rb"(?![0-9.eE])"
    edited, n = re.subn(pattern, lambda m: m.group(1) + json.dumps(new).encode(), raw, count=1)
    if n:
        return edited
    value = _json_value(raw)
    if isinstance(value, dict) and value.get("packetID") == old:
        value["packetID"] = new
        return json.dumps(value, separators=(",", ":")).encode()
    return raw


# ---------------------------------------------------------------------- diffing
