"""Rules, intercepts and user injections applied to the live relay, message by message.

The decisions come from :class:`proxy.core.gate.Gate`; this module owns what takes
time: a per-direction queue where a delayed or held message makes the ones behind it
wait (that direction only: the other direction and other connections flow), the timers,
the held messages the user forwards, edits or drops, and the answers of ``reply``
rules. It knows mitmproxy only through the :class:`Wire` the addon gives it, so it is
tested with real relays and reasoned about without mitmproxy's layers.

Every unit a gated direction receives ends as exactly one recorded Data event, at the
moment it is forwarded, dropped or given up: nothing is lost silently. A unit still
waiting when its connection ends is recorded as dropped, with the reason.

About 500 lines on purpose: delays, holds, the user's choices, injections and closes
all act on the same per-direction queues, and splitting them would spread one
invariant (the order of a direction) over several modules.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
from collections import deque
from collections.abc import Callable, Iterator
from typing import Protocol

from proxy.core.events import SIDES, Data, Event, Intervention, InterventionBy, Side, Transport
from proxy.core.filter import Filter
from proxy.core.gate import Decision, Gate, GateContext, compact
from proxy.core.rules import RuleSet

logger = logging.getLogger(__name__)


class InterventionError(ValueError):
    """A request about held messages or injection that cannot be done (unknown id, bad JSON)."""


class Wire(Protocol):
    """What the relay adapter does for this module."""

    def send(self, conn: str, to: Side, data: bytes, text: bool) -> bool:
        """Put ``data`` on the wire toward ``to`` later (not recorded again); False if gone."""
        ...

    def close(self, conn: str) -> None:
        """Close both sides of the connection."""
        ...

    def emit(self, event: Event) -> None:
        """Record an event (to the sinks)."""
        ...

    def now(self) -> float:
        """Wall-clock time of the next event."""
        ...


class Held:
    """A unit waiting in a gated direction: delayed by a rule or held for the user.

    Plain class (mitmproxy loads scripts outside sys.modules, where dataclasses fail).
    """

    __slots__ = ("conn", "decision", "id", "ready_at", "released", "side", "since")

    def __init__(self, id: int, decision: Decision, since: float, ready_at: float) -> None:
        self.id = id
        self.decision = decision
        self.conn = decision.conn
        self.side: Side = decision.side
        self.since = since
        self.ready_at = ready_at
        # None: waiting for the user (if held); bytes: what the user let go (maybe edited)
        self.released: bytes | None = None if decision.hold else decision.out

    @property
    def for_user(self) -> bool:
        """Held by the intercept filter and not yet let go."""
        return self.decision.hold and self.released is None

    @property
    def text(self) -> str:
        """The unit as received, for the editor."""
        return self.decision.data.decode("utf-8", "replace").strip()


def _other(side: Side) -> Side:
    return "outlet" if side == "app" else "app"


class Interventions:
    """The rules and the intercept filter of one relay, and the queues they make."""

    def __init__(self, wire: Wire, rules: RuleSet | None = None) -> None:
        self.wire = wire
        self.rules = rules if rules is not None else RuleSet([])
        self.rules.listeners.append(self._rules_changed)
        self.intercept: Filter | None = None
        self.context = GateContext()
        self._gates: dict[tuple[str, Side], Gate] = {}
        self._queues: dict[tuple[str, Side], deque[Held]] = {}
        self._transports: dict[str, Transport] = {}
        self._ids = itertools.count(1)
        self._timers: dict[tuple[str, Side], asyncio.TimerHandle] = {}
        # queued answers of reply rules: held id -> the record to emit when sent
        self._made: dict[int, Data] = {}
        # directions whose gate failed: forwarded as received until they close
        self._broken: set[tuple[str, Side]] = set()
        self._told: set[str] = set()  # notes of rules that could not act, said once
        self.listeners: list[Callable[[], None]] = []
        """Called (no arguments) whenever the held messages or rule counts change."""
        self.active = False
        """Whether new traffic must go frame by frame (some rule or filter could act)."""
        self.engaged = False
        """False: no direction is or may be gated; the relay forwards chunks as they are
        (one attribute read per chunk is all this module costs then)."""
        self._update()

    # ------------------------------------------------------------------ state

    def _update(self) -> None:
        # Every change of a rule's switch, the rules or the filter comes through here
        # (the rule set's listeners, set_rules, set_intercept): worked out once, not per
        # chunk.
        self.active = any(r.enabled for r in self.rules.rules) or self.intercept is not None
        self.engaged = self.active or bool(self._gates) or any(self.context.injected.values())

    def gated(self, conn: str, side: Side, at_boundary: bool) -> bool:
        """Whether this chunk goes through a gate.

        A direction is gated while a rule or the intercept filter could act on it, or
        (outlet side) while a reply to a user's injection is due. It becomes gated only
        between JSON values (``at_boundary``: a gate must start at a frame), and stops
        being gated once nothing could act and its gate holds nothing.
        """
        key = (conn, side)
        if key in self._broken:
            return False
        gate = self._gates.get(key)
        wanted = self.active or (side == "outlet" and bool(self.context.injected.get(conn)))
        if gate is not None:
            if wanted or gate.buffered or self._queues.get(key):
                return True
            del self._gates[key]
            self._update()
            return False
        return wanted and at_boundary

    def held(self) -> list[Held]:
        """Every unit waiting for the user, oldest first."""
        return [h for h in self._waiting() if h.for_user]

    def _waiting(self) -> Iterator[Held]:
        for queue in self._queues.values():
            yield from queue

    def set_intercept(self, expression: Filter | None) -> None:
        """Hold every later message this matches (None: hold nothing new; those held stay)."""
        self.intercept = None if expression is None or expression.is_empty else expression
        for gate in self._gates.values():
            gate.intercept = self.intercept
        self._update()
        self._changed()

    def _rules_changed(self) -> None:
        # a reload or a switch: whether anything is in force may have changed
        self._update()
        self._changed()

    def set_rules(self, rules: RuleSet) -> None:
        if self._rules_changed in self.rules.listeners:
            self.rules.listeners.remove(self._rules_changed)
        rules.listeners.append(self._rules_changed)
        self.rules = rules
        for gate in self._gates.values():
            gate.rules = rules
        self._update()
        self._changed()

    def _changed(self) -> None:
        for listener in list(self.listeners):
            try:
                listener()
            except Exception:  # a view's failure must not stop the relay
                logger.exception("invisproxy: intervention listener failed")

    # ------------------------------------------------------------------ traffic

    def opened(self, conn: str, transport: Transport) -> None:
        self._transports[conn] = transport

    def on_data(self, conn: str, side: Side, data: bytes, text: bool) -> bytes | None:
        """A chunk (TCP) or message (WebSocket) received on a gated direction: what to
        forward in its place now, None for nothing (a WebSocket message is then dropped).
        Records every unit it settles."""
        key = (conn, side)
        gate = self._gates.get(key)
        if gate is None:
            transport = self._transports.get(conn, "tcp")
            gate = Gate(conn, side, transport, self.rules, self.context, self.intercept)
            self._gates[key] = gate
            self.engaged = True
        t = self.wire.now()
        before = self.rules.generation
        try:
            decisions = gate.feed(data, t, text)
        except Exception:  # forwarding never fails (DESIGN 1.3): this direction goes raw
            logger.exception(f"invisproxy: rules failed on {conn} ({side}); forwarding as is")
            held = gate.pending + data
            del self._gates[key]
            self._broken.add(key)
            self.wire.emit(Data(t, conn, side, held, text))
            return held
        out = self._settle(decisions, t)
        if self.rules.generation != before:
            self._changed()
        return out

    def _settle(self, decisions: list[Decision], t: float) -> bytes | None:
        """Record and queue ``decisions``; the bytes to forward now, or None when none
        of them goes out now (a WebSocket message is then dropped, not sent empty)."""
        out: list[bytes] = []
        now = False
        closing: Decision | None = None
        for d in decisions:
            if closing is not None:  # after a close rule nothing more is forwarded
                self._give_up_unit(d, t, f"the connection was closed by {closing.rule_label}")
                continue
            if d.note is not None:
                self._tell_once(d.note)
            queue = self._queues.get((d.conn, d.side))
            if d.kind == "close":
                self.wire.emit(d.record(t))
                closing = d
                continue
            if d.kind == "reply":
                self.wire.emit(d.record(t))
                self._answer(d, t)
                continue
            if queue or d.waits:
                self._enqueue(d, t)
                continue
            if d.kind != "drop":
                out.append(d.out)
                now = True
            self.wire.emit(d.record(t))
        if closing is not None:
            asyncio.get_running_loop().call_soon(self.wire.close, closing.conn)
        return b"".join(out) if now else None

    def _tell_once(self, note: str) -> None:
        """A rule that matched but could not act: said once per distinct reason."""
        if note not in self._told:
            self._told.add(note)
            logger.warning(f"invisproxy: {note}")

    def _give_up_unit(self, d: Decision, t: float, why: str) -> None:
        rule = d.rule.text if d.rule else None
        self.wire.emit(_not_forwarded(t, d.conn, d.side, d.data, d.text, why, d.by, rule))

    def _answer(self, d: Decision, t: float) -> None:
        """A ``reply`` rule's answer goes back toward the app, behind what waits there."""
        assert d.reply is not None
        record = d.reply_record(t)
        queue = self._queues.get((d.conn, record.side))
        if queue:
            answer = Decision("forward", d.conn, record.side, d.reply, d.reply, True)
            held = Held(next(self._ids), answer, t, t)
            held.decision.why = "answer of a reply rule"
            queue.append(held)
            self._made[held.id] = record
            return
        if self.wire.send(d.conn, _other(record.side), d.reply, True):
            self.wire.emit(record)

    def _enqueue(self, d: Decision, t: float) -> None:
        key = (d.conn, d.side)
        held = Held(next(self._ids), d, t, t + d.seconds)
        queue = self._queues.setdefault(key, deque())
        if queue and not d.waits:  # it waits only for those before it
            d.behind = True
            d.by = "user" if any(h.decision.hold for h in queue) else "rule"
        queue.append(held)
        if d.seconds > 0:
            self._arm(key)
        if d.hold:
            self._changed()

    def _arm(self, key: tuple[str, Side]) -> None:
        queue = self._queues.get(key)
        if not queue or key in self._timers:
            return
        head = queue[0]
        delay = head.ready_at - self.wire.now()
        if delay > 0:
            loop = asyncio.get_running_loop()
            self._timers[key] = loop.call_later(delay, self._timer_fired, key)

    def _timer_fired(self, key: tuple[str, Side]) -> None:
        self._timers.pop(key, None)
        self._pump(key)

    def _pump(self, key: tuple[str, Side]) -> None:
        """Send what is ready at the head of a direction's queue, in order."""
        queue = self._queues.get(key)
        changed = False
        while queue:
            head = queue[0]
            now = self.wire.now()
            if head.released is None or now < head.ready_at:
                break
            queue.popleft()
            changed = changed or head.decision.hold
            self._release(head, now)
        if queue:
            self._arm(key)
        elif queue is not None:
            del self._queues[key]
        if changed:
            self._changed()

    def _release(self, held: Held, now: float) -> None:
        d = held.decision
        data = held.released if held.released is not None else d.out
        if data and not self.wire.send(d.conn, _other(d.side), data, d.text):
            self._made.pop(held.id, None)
            self._give_up(held, "the connection closed before it could be sent")
            return
        self.wire.emit(self._released_record(held, now))

    def _released_record(self, held: Held, now: float) -> Data:
        """What is recorded for a held unit let go now: a ``reply`` rule's answer, a
        drop, or the unit with how long it waited (and the user's edit, if any)."""
        d = held.decision
        made = self._made.pop(held.id, None)
        if made is not None:
            return made
        if d.kind == "drop":
            return d.record(now)
        edited = held.released if held.released not in (None, d.out) else None
        return d.record(now, round(now - held.since, 6), edited)

    def _give_up(self, held: Held, why: str) -> None:
        d = held.decision
        by: InterventionBy = "user" if d.hold else "rule"
        rule = d.rule.text if d.rule else None
        now = self.wire.now()
        waited = round(now - held.since, 6)
        self.wire.emit(_not_forwarded(now, d.conn, d.side, d.data, d.text, why, by, rule, waited))

    # ------------------------------------------------------------------ the user

    def _find(self, held_id: int) -> tuple[tuple[str, Side], Held]:
        for key, queue in self._queues.items():
            for held in queue:
                if held.id == held_id and held.for_user:
                    return key, held
        raise InterventionError(f"no held message #{held_id} (already released?)")

    def forward(self, held_id: int, edited: str | bytes | None = None) -> None:
        """Let a held message go, as received or as ``edited`` (JSON, sent compactly)."""
        key, held = self._find(held_id)
        if edited is None:
            held.released = held.decision.out
        else:
            held.released = compact_edit(edited, held.decision)
        self._pump(key)
        self._changed()

    def drop(self, held_id: int) -> None:
        """Never forward a held message (recorded as dropped by the user)."""
        key, held = self._find(held_id)
        held.decision.drop_by_user()
        held.released = b""
        self._pump(key)
        self._changed()

    def forward_all(self) -> int:
        """Let every held message go as received; how many."""
        keys = set()
        count = 0
        for key, queue in self._queues.items():
            for held in queue:
                if held.for_user:
                    held.released = held.decision.out
                    keys.add(key)
                    count += 1
        for key in keys:
            self._pump(key)
        if count:
            self._changed()
        return count

    def injected(self, conn: str, to: Side, data: bytes, text: bool) -> Data:
        """The record of a user's injection (the outlet's reply to it will be swallowed)."""
        if to == "outlet":
            self.context.note_injected(conn, data)
            self.engaged = True
        source: Side = _other(to)
        mark = Intervention("inject", "user", None, None, f"sent to the {to} by the user")
        return Data(self.wire.now(), conn, source, data, text, True, mark)

    def inject(self, conn: str, to: Side, data: bytes, text: bool = True) -> bool:
        """A user's injection on a gated direction: it goes out behind what waits there.
        False: the direction is not gated (the caller injects as usual)."""
        key: tuple[str, Side] = (conn, _other(to))
        if key not in self._gates:
            return False
        record = self.injected(conn, to, data, text)
        queue = self._queues.get(key)
        if queue:
            made = Decision("forward", conn, key[1], data, data, text)
            held = Held(next(self._ids), made, record.t, record.t)
            queue.append(held)
            self._made[held.id] = record
            return True
        if self.wire.send(conn, to, data, text):
            self.wire.emit(record)
            return True
        raise InterventionError(f"connection {conn} is not live")

    # ------------------------------------------------------------------ ends

    def flush(self, conn: str, side: Side) -> bytes:
        """The sender closed its side (TCP): the bytes still owed to the other side."""
        return b"".join(data for data, _ in self.flush_units(conn, side))

    def flush_units(self, conn: str, side: Side) -> list[tuple[bytes, bool]]:
        """The sender closed its side: what its gate still had, and what waited there,
        goes out now (before the close is passed on), unit by unit with its text flag
        (a WebSocket sends each as a message of its own)."""
        key = (conn, side)
        out: list[tuple[bytes, bool]] = []
        gate = self._gates.get(key)
        if gate is not None:
            tail = gate.flush(self.wire.now())
            queue = self._queues.get(key)
            for d in tail:
                if queue:
                    self._enqueue(d, self.wire.now())
                    continue
                if d.out:
                    out.append((d.out, d.text))
                self.wire.emit(d.record(self.wire.now()))
        queue = self._queues.pop(key, None)
        timer = self._timers.pop(key, None)
        if timer is not None:
            timer.cancel()
        now = self.wire.now()
        for held in queue or ():
            d = held.decision
            data = held.released if held.released is not None else d.out
            answer = held.id in self._made
            if not answer and d.kind != "drop":
                d.why = "sent early: the sender closed its side"
            record = self._released_record(held, now)
            if answer or d.kind != "drop":
                out.append((data, record.text))
            self.wire.emit(record)
        if queue:
            self._changed()
        return out

    def closed(self, conn: str) -> None:
        """The connection is gone: what still waits on it was never forwarded."""
        changed = False
        for side in SIDES:
            key: tuple[str, Side] = (conn, side)
            gate = self._gates.pop(key, None)
            if gate is not None and gate.buffered:
                # the start of a frame whose end never came: never forwarded
                why = "the connection closed in the middle of it"
                self.wire.emit(_not_forwarded(self.wire.now(), conn, side, gate.pending, True, why))
            self._broken.discard(key)
            timer = self._timers.pop(key, None)
            if timer is not None:
                timer.cancel()
            for held in self._queues.pop(key, ()) or ():
                self._made.pop(held.id, None)
                self._give_up(held, "the connection closed while it waited")
                changed = True
        self._transports.pop(conn, None)
        self.context.forget(conn)
        self._update()
        if changed:
            self._changed()


def _not_forwarded(
    t: float,
    conn: str,
    side: Side,
    data: bytes,
    text: bool,
    why: str,
    by: InterventionBy = "rule",
    rule: str | None = None,
    waited: float | None = None,
) -> Data:
    """The record of a unit that was never forwarded, and why."""
    mark = Intervention("drop", by, rule, waited, f"not forwarded: {why}")
    return Data(t, conn, side, data, text, False, mark)


def compact_edit(edited: str | bytes, decision: Decision) -> bytes:
    """The user's edit as the wire carries it: compact JSON, the unit's trailing
    whitespace kept. Invalid JSON is refused (it is never sent)."""
    try:
        value = json.loads(edited)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise InterventionError(f"not valid JSON: {exc}") from None
    body = compact(value)
    data = decision.data
    tail = data[len(data.rstrip(b" \t\r\n")) :]
    return body + tail
