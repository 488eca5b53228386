"""Decides, message by message, what a direction the user intervenes in forwards.

Sans-IO: a :class:`Gate` is fed the bytes one direction of one connection received and
returns :class:`Decision` s, one per *unit* (a frame with the whitespace after it), in
stream order. It never sends, sleeps or closes anything: the relay adapter does what a
decision says (forward now, after a delay, when the user lets it go; answer the other
way; close the connection) and records the decision's event when it does. So the same
logic serves mitmproxy, the tests and any other relay.

A direction is gated only while a rule or an intercept filter could change it; with
none, the relay forwards received chunks as they are and no gate exists (DESIGN 5).
Bytes that are not a frame yet (the start of a value whose end has not arrived) stay
in the gate until it completes or the connection closes (:meth:`Gate.flush`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from proxy.core.events import Close, Data, Intervention, InterventionAction, Open, Side, Transport
from proxy.core.filter import Filter
from proxy.core.framing import Frame, Framer
from proxy.core.model import Message, Row
from proxy.core.protocol import decode
from proxy.core.protocol.common import compact_text
from proxy.core.rules import Rule, RuleSet

DecisionKind = Literal["forward", "drop", "delay", "close", "reply", "set"]

_WS: Final = b" \t\r\n"

MAX_PENDING: Final = 1024
"""Unanswered requests remembered per connection (oldest forgotten first)."""

INJECTED_REPLY_WHY: Final = "reply to an injected request; the app never asked"


def compact(value: Any) -> bytes:
    """A JSON value as the protocol sends it: no spaces, UTF-8 kept."""
    return compact_text(value).encode()


@dataclass
class GateContext:
    """What the gates of one relay share: the outlet's serial, open requests, injections.

    ``swallow_injected_replies``: the outlet's reply to a request the user injected
    toward it is not forwarded to the app, which never asked (the default).
    """

    last_sn: Any = None
    swallow_injected_replies: bool = True
    pending: dict[str, dict[Any, Message]] = field(default_factory=dict)
    """Per connection, the app's requests forwarded and not yet answered, by packetID."""
    injected: dict[str, set[Any]] = field(default_factory=dict)

    def note_injected(self, conn: str, message: bytes) -> Any:
        """Remember a request the user sends to the outlet; its packetID, if any."""
        try:
            value = json.loads(message)
        except (ValueError, UnicodeDecodeError, RecursionError):
            return None
        pid = value.get("packetID") if type(value) is dict else None
        if pid is not None:
            self.injected.setdefault(conn, set()).add(_key(pid))
        return pid

    def forget(self, conn: str) -> None:
        self.pending.pop(conn, None)
        self.injected.pop(conn, None)


def _key(pid: Any) -> Any:
    """packetIDs compare as the outlet echoes them (an int may come back as a string)."""
    return str(pid) if type(pid) in (int, str) else repr(pid)


@dataclass(slots=True)
class Decision:
    """What to do with one unit of a gated direction."""

    kind: DecisionKind
    conn: str
    side: Side
    data: bytes
    """The unit as received."""
    out: bytes
    """What to forward in this direction (empty for drop, close and reply)."""
    text: bool
    message: Message | None = None
    rule: Rule | None = None
    reply: bytes | None = None
    """What to send back the other way (a ``reply`` rule's answer)."""
    seconds: float = 0.0
    """A delay to wait first."""
    hold: bool = False
    """The intercept filter matched: after any delay the unit waits for the user."""
    note: str | None = None
    """Why a rule could not do what it says (the unit is then forwarded as received)."""
    by: Literal["rule", "user"] = "rule"
    why: str | None = None
    behind: bool = False
    """It waited only because a unit before it did (a delay, a hold): marked as delayed."""

    def drop_by_user(self) -> None:
        """The user dropped the held unit: nothing goes out."""
        self.kind, self.by, self.out, self.hold = "drop", "user", b"", False
        self.why = "dropped by the user"

    @property
    def rule_label(self) -> str:
        return self.rule.label if self.rule is not None else "a rule"

    @property
    def waits(self) -> bool:
        """Whether the unit cannot simply go out now."""
        return self.hold or self.seconds > 0

    def intervention(self, held: float | None = None, edited: bool = False) -> Intervention | None:
        """The record's intervention mark, once the unit is released (``held`` seconds)."""
        action: InterventionAction
        if edited:
            action = "edit"
        elif self.kind == "forward":
            if self.behind and not self.hold:
                why = self.why or "waited behind a message that was delayed or held"
                return Intervention("delay", self.by, None, held, why)
            if not self.hold:
                return None  # a rule that could not apply (``note``) changed nothing
            action = "hold"
        else:
            action = self.kind
        by = "user" if edited or (self.hold and self.kind == "forward") else self.by
        return Intervention(action, by, self._rule_text(), held, self.why or self._why(action))

    def _rule_text(self) -> str | None:
        return self.rule.text if self.rule is not None else None

    def _why(self, action: str) -> str | None:
        if action in ("edit", "hold"):
            return "edited by the user" if action == "edit" else "held by the user"
        return self.rule.explain() if self.rule is not None else None

    def record(self, t: float, held: float | None = None, out: bytes | None = None) -> Data:
        """The Data event of this unit, made when it is released.

        ``out`` replaces what is forwarded (the user's edit); what was received is then
        kept as ``original``.
        """
        edited = out is not None and out != self.out
        sent = self.out if out is None else out
        mark = self.intervention(held, edited)
        if self.kind in ("drop", "close", "reply"):
            return Data(t, self.conn, self.side, self.data, self.text, False, mark)
        original = self.data if sent != self.data else None
        return Data(t, self.conn, self.side, sent, self.text, False, mark, original)

    def reply_record(self, t: float) -> Data:
        """The Data event of the answer a ``reply`` rule made, sent toward the app."""
        assert self.reply is not None
        other: Side = "outlet" if self.side == "app" else "app"
        mark = Intervention("reply", "rule", self._rule_text(), None, self._why("reply"))
        return Data(t, self.conn, other, self.reply, True, True, mark)


TextOf = Callable[[Row, Message | None], str]


def _text_of(row: Row, msg: Message | None) -> str:
    return msg.raw.decode("utf-8", "replace") if msg is not None else ""


class Gate:
    """One direction of one connection, forwarded frame by frame."""

    def __init__(
        self,
        conn: str,
        side: Side,
        transport: Transport,
        rules: RuleSet,
        context: GateContext,
        intercept: Filter | None = None,
    ) -> None:
        self.conn = conn
        self.side = side
        self.transport: Transport = transport
        self.rules = rules
        self.context = context
        self.intercept = intercept
        self._framer = Framer()
        self._framer.feed(Open(0.0, conn, transport, "", ""))
        self._buffer = b""

    @property
    def buffered(self) -> int:
        """Bytes received but not yet part of a decided unit."""
        return len(self._buffer)

    @property
    def pending(self) -> bytes:
        """Those bytes (the start of a frame whose end has not come)."""
        return self._buffer

    def feed(self, data: bytes, t: float, text: bool = True) -> list[Decision]:
        """Decisions for the units ``data`` completes, in stream order."""
        if self.transport == "ws":
            frames = self._framer.feed(Data(t, self.conn, self.side, data, text))
            if not frames:  # an empty message is no frame, and still a message to forward
                return [self._forward(data, None, text)]
            return [self._decide(frames[0], data, 0, text)]
        buf = self._buffer + data if self._buffer else data
        frames = self._framer.feed(Data(t, self.conn, self.side, data, text))
        decisions, self._buffer = self._cut(buf, frames, text)
        return decisions

    def flush(self, t: float) -> list[Decision]:
        """At the close: the units of whatever was still waiting for its end."""
        if self.transport == "ws":
            return []
        frames = self._framer.feed(Close(t, self.conn))
        buf, self._buffer = self._buffer, b""
        decisions, rest = self._cut(buf, frames, True)
        if rest:
            decisions.append(self._forward(rest, None, True))
        return decisions

    def _cut(self, buf: bytes, frames: list[Frame], text: bool) -> tuple[list[Decision], bytes]:
        """Split ``buf`` into one unit per frame (plus the whitespace after it); what is
        left is the start of a frame to come (or whitespace, which goes out at once)."""
        decisions: list[Decision] = []
        pos = 0
        for frame in frames:
            start = buf.find(frame.raw, pos)
            if start < 0:
                # The framer's frames are always bytes of the stream; should that ever
                # fail, forward everything rather than lose a byte.
                decisions.append(self._forward(buf[pos:], None, text))
                return decisions, b""
            if start > pos and buf[pos:start].strip(_WS):
                decisions.append(self._forward(buf[pos:start], None, text))
                pos = start
            end = start + len(frame.raw)
            while end < len(buf) and buf[end] in _WS:
                end += 1
            decisions.append(self._decide(frame, buf[pos:end], start - pos, text))
            pos = end
        rest = buf[pos:]
        if rest and not rest.strip(_WS):
            decisions.append(self._forward(rest, None, text))
            rest = b""
        return decisions, rest

    def _forward(self, data: bytes, message: Message | None, text: bool) -> Decision:
        return Decision("forward", self.conn, self.side, data, data, text, message)

    def _decide(self, frame: Frame, unit: bytes, lead: int, text: bool) -> Decision:
        msg = decode(frame, -1, self.transport)
        msg.conn = self.conn
        ctx = self.context
        pid = _key(msg.packet_id) if msg.packet_id is not None else None
        if self.side == "outlet":
            if msg.sn is not None:
                ctx.last_sn = msg.sn
            pending = ctx.pending.get(self.conn)
            request = pending.pop(pid, None) if pid is not None and pending else None
            if request is not None:
                msg.kind = "response"
                if msg.callback is None:
                    # a pure ack is of its request's callback, as the timeline shows it
                    msg.callback, msg.name = request.callback, request.name
            injected = ctx.injected.get(self.conn)
            if (
                pid is not None
                and injected is not None
                and pid in injected
                and ctx.swallow_injected_replies
                and msg.kind != "response"
            ):
                injected.discard(pid)
                return Decision(
                    "drop", self.conn, self.side, unit, b"", text, msg, None,
                    by="user", why=INJECTED_REPLY_WHY,
                )  # fmt: skip
        row = Row(frame.t, "message", self.conn, -1)
        decision = self._by_rule(msg, row, frame, unit, lead, text)
        if decision.kind in ("forward", "delay", "set") and self.intercept is not None:
            decision.hold = self.intercept(row, msg, _text_of)
        if self.side == "app" and pid is not None and decision.out:
            waiting = ctx.pending.setdefault(self.conn, {})
            waiting[pid] = msg
            if len(waiting) > MAX_PENDING:  # fire-and-forget requests are never answered
                del waiting[next(iter(waiting))]
        return decision

    def _by_rule(
        self, msg: Message, row: Row, frame: Frame, unit: bytes, lead: int, text: bool
    ) -> Decision:
        rule = self.rules.first_match(row, msg, _text_of) if self.rules else None
        if rule is None:
            return self._forward(unit, msg, text)
        action = rule.action
        conn, side = self.conn, self.side
        if action.kind == "drop":
            return Decision("drop", conn, side, unit, b"", text, msg, rule)
        if action.kind == "close":
            return Decision("close", conn, side, unit, b"", text, msg, rule)
        if action.kind == "delay":
            seconds = action.seconds or 0.0
            return Decision("delay", conn, side, unit, unit, text, msg, rule, seconds=seconds)
        if action.kind == "reply":
            if side != "app" or msg.packet_id is None:
                why = "a reply answers an app's request with a packetID; forwarded unchanged"
                self.rules.not_applied(rule)
                return Decision("forward", conn, side, unit, unit, text, msg, rule, note=why)
            answer = compact(action.reply_object(msg.packet_id, self.context.last_sn))
            if self.transport == "tcp":
                answer += b"\n"
            return Decision("reply", conn, side, unit, b"", text, msg, rule, reply=answer)
        try:
            changed = action.apply_set(frame.value)
            body = compact(changed)
        except (ValueError, RecursionError) as exc:
            problem = str(exc) if isinstance(exc, ValueError) else "nested too deeply to re-encode"
            why = f"{rule.label} did not apply ({problem}); forwarded unchanged"
            self.rules.not_applied(rule)
            return Decision("forward", conn, side, unit, unit, text, msg, rule, note=why)
        out = unit[:lead] + body + unit[lead + len(frame.raw) :]
        return Decision("set", conn, side, unit, out, text, msg, rule)
