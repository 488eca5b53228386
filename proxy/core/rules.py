"""Rules that make the device misbehave on purpose: ``MATCH -> ACTION [once|times N|after N]``.

MATCH is the timeline's filter language (:mod:`proxy.core.filter`) applied to the message
being forwarded; ACTION says what the proxy does instead of forwarding it unchanged::

    cb:21 dir:app -> reply puback=0                       # refuse the update as the outlet
    cb:22 arg.1:40-100 -> drop                            # progress stops at 30 %
    cb:23 arg.0:1 arg.1:1 -> set payload.callbackArgs.1=0 # success becomes failure
    cb:22 arg.1:50-100 -> close once

This module only parses and counts (sans-IO, no clock): the gate and the relay carry
actions out. The first enabled rule whose MATCH holds and whose limit allows is the
one that acts; later rules do not see that message (and do not count it).

About 600 lines on purpose: the grammar, the actions it builds and the set the relay
asks are one language whose error messages quote each other; split, a new action would
be an edit in three modules.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import re
import tomllib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

from proxy.core.filter import FIELDS, FieldValueError, Filter, FilterError, TextOf
from proxy.core.model import Message, Row
from proxy.core.protocol.common import compact_text

ActionKind = Literal["drop", "delay", "close", "reply", "set"]
PathKey = str | int
FieldValue = tuple[tuple[PathKey, ...], Any]

ACTIONS_HELP: Final = (
    "actions: drop, delay SECONDS, close, reply FIELD=VALUE..., set PATH=JSON; "
    "then once, times N or after N"
)
TERMS_HELP: Final = "terms: " + ", ".join(f"{name}:" for name in FIELDS) + " or a bare word"
MAX_DELAY: Final = 3600.0

# Wire keys people write in lower case (``puback`` is how the docs talk about PUBACK).
_KEY_ALIASES: Final[dict[str, str]] = {
    "puback": "PUBACK",
    "packetid": "packetID",
    "callbackname": "callbackName",
    "callbackargs": "callbackArgs",
}
_PAST: Final[dict[str, str]] = {
    "drop": "dropped",
    "delay": "delayed",
    "close": "connection closed",
    "reply": "answered by the proxy",
    "set": "changed",
}


class RuleError(ValueError):
    """A rule that cannot be understood; ``column`` is 1-based into the rule's text.

    ``where`` names the file and table a rule came from (None on the command line);
    ``hint`` lists what may be written at that point.
    """

    def __init__(
        self,
        message: str,
        column: int = 0,
        *,
        text: str | None = None,
        where: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.column = column
        self.text = text
        self.where = where
        self.hint = hint

    def __str__(self) -> str:
        parts = []
        if self.where:
            parts.append(f"{self.where}: ")
        if self.text is not None:
            parts.append(f"rule {self.text!r}: ")
        parts.append(self.message)
        if self.column:
            parts.append(f" at column {self.column}")
        if self.hint:
            parts.append(f"; {self.hint}")
        return "".join(parts)


def _path_text(path: tuple[PathKey, ...]) -> str:
    return ".".join(str(p) for p in path)


@dataclass(frozen=True, slots=True)
class Action:
    """What a rule does: ``kind``, ``seconds`` (delay), ``fields`` (reply, set), ``text``.

    ``fields`` holds (path, value) pairs with wire key names (``puback`` -> ``PUBACK``)
    and list indexes as ints; ``text`` is the normalised action as a rule writes it.
    """

    kind: ActionKind
    seconds: float | None = None
    fields: tuple[FieldValue, ...] = ()
    text: str = ""

    def apply_set(self, value: Any) -> Any:
        """A changed deep copy of a decoded message (``set``).

        Raises ValueError when the path is not in this message: the caller forwards it
        unchanged and says why (a ``set`` never adds keys the sender did not send).
        """
        if self.kind != "set":
            raise ValueError(f"{self.text!r} is not a set action")
        path, new = self.fields[0]
        # Only the containers on the path are copied: the rest is shared with ``value``
        # (never changed), so a deeply nested message costs no recursion here.
        changed = _shallow(value)
        target = changed
        for depth, key in enumerate(path):
            where = _path_text(path[:depth]) or "the message"
            last = depth == len(path) - 1
            if type(key) is int:
                if type(target) is not list:
                    raise ValueError(
                        f"{_path_text(path)} is not in this message: {where} is not a list"
                    )
                if key >= len(target):
                    raise ValueError(
                        f"{_path_text(path)} is not in this message: "
                        f"{where} has {len(target)} element(s)"
                    )
            elif type(target) is not dict:
                raise ValueError(
                    f"{_path_text(path)} is not in this message: {where} is not an object"
                )
            elif key not in target:
                raise ValueError(
                    f"{_path_text(path)} is not in this message: no {key!r} in {where}"
                )
            if last:
                target[key] = copy.deepcopy(new)  # parsed from the rule: shallow enough
            else:
                target[key] = _shallow(target[key])
                target = target[key]
        return changed

    def reply_object(self, packet_id: Any, sn: Any) -> dict[str, Any]:
        """The proxy's answer as the outlet (``reply``): sn, packetID, then the fields.

        Missing containers on a path are made (objects; a list for an index, padded
        with null), so ``reply payload.callbackName=21`` nests as the outlet would.
        """
        obj: dict[str, Any] = {"sn": sn, "packetID": packet_id}
        for path, value in self.fields:
            target: Any = obj
            for depth, key in enumerate(path):
                last = depth == len(path) - 1
                nxt: Any = (
                    copy.deepcopy(value) if last else ([] if type(path[depth + 1]) is int else {})
                )
                if type(target) is list and type(key) is int:
                    while len(target) <= key:
                        target.append(None)
                    if last or not isinstance(target[key], dict | list):
                        target[key] = nxt
                elif type(target) is dict:
                    if last or not isinstance(target.get(key), dict | list):
                        target[key] = nxt
                else:  # a scalar set by an earlier field is replaced by a container
                    raise ValueError(f"reply: {_path_text(path[:depth])} is not an object")
                target = target[key]
        return obj


@dataclass(eq=False)
class Rule:
    """One rule with its live state: enabled, and how often it ``matched`` / was ``applied``.

    ``matched`` counts messages for which MATCH held while the rule was enabled (and no
    earlier rule took the message); ``applied`` those it acted on (the limit allowed).
    """

    number: int
    text: str
    match: Filter
    action: Action
    times: int | None = None
    after: int = 0
    enabled: bool = True
    matched: int = 0
    applied: int = 0
    source: str | None = None

    @property
    def label(self) -> str:
        return f"rule {self.number}: {self.text}"

    @property
    def spent(self) -> bool:
        """The ``times`` limit is used up: the rule will never act again."""
        return self.times is not None and self.applied >= self.times

    def explain(self) -> str:
        """What the rule did, for the detail pane: ``dropped by rule 3: cb:22 -> drop``."""
        done = _PAST[self.action.kind]
        if self.action.kind == "delay" and self.action.seconds is not None:
            done = f"delayed {_seconds_text(self.action.seconds)} s"
        return f"{done} by {self.label}"


def _shallow(value: Any) -> Any:
    """A copy of one container level (lists and objects); other values as they are."""
    if type(value) is dict:
        return dict(value)
    if type(value) is list:
        return list(value)
    return value


def _seconds_text(seconds: float) -> str:
    text = repr(seconds)
    return text[:-2] if text.endswith(".0") else text


# ---------------------------------------------------------------------------- parsing


def _find_arrow(text: str) -> int:
    """Index of the first ``->`` outside a filter's quotes, or -1."""
    quoted = False
    for i, c in enumerate(text):
        if c == '"':
            quoted = not quoted
        elif not quoted and c == "-" and text.startswith("->", i):
            return i
    return -1


_WORD = re.compile(r"\s*(\S+)")


def _raise_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


_JSON = json.JSONDecoder(parse_constant=_raise_constant)
_SEGMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*|\d+")


class _ActionParser:
    """Reads ACTION and the limit words from ``text[pos:]``; columns stay whole-rule."""

    def __init__(self, text: str, pos: int) -> None:
        self.text = text
        self.pos = pos

    def error(self, message: str, index: int, hint: str | None = ACTIONS_HELP) -> RuleError:
        return RuleError(message, index + 1, text=self.text, hint=hint)

    def end(self) -> int:
        return len(self.text.rstrip())

    def word(self) -> tuple[str, int] | None:
        """The next whitespace-separated word and its index, without taking it."""
        m = _WORD.match(self.text, self.pos)
        if m is None:
            return None
        return m.group(1), m.start(1)

    def take(self) -> tuple[str, int]:
        m = _WORD.match(self.text, self.pos)
        assert m is not None
        self.pos = m.end()
        return m.group(1), m.start(1)

    def parse(self) -> tuple[Action, int | None, int]:
        first = self.word()
        if first is None:
            raise self.error("an action is missing after '->'", self.end())
        name, at = self.take()
        kind = name.lower()
        if kind in ("drop", "close"):
            action = Action("drop" if kind == "drop" else "close", text=kind)
        elif kind == "delay":
            action = self.delay(at)
        elif kind in ("reply", "set"):
            action = self.fields("reply" if kind == "reply" else "set", at)
        else:
            raise self.error(f"unknown action {name!r}", at)
        times, after = self.limits()
        return action, times, after

    def delay(self, at: int) -> Action:
        nxt = self.word()
        if nxt is None:
            raise self.error("delay needs SECONDS (delay 5)", self.end(), None)
        value, where = self.take()
        try:
            seconds = float(value)
        except ValueError:
            raise self.error(f"delay: {value!r} is not a number of seconds", where, None) from None
        if not math.isfinite(seconds) or seconds <= 0 or seconds > MAX_DELAY:
            raise self.error(
                f"delay: {value!r} must be more than 0 and at most {MAX_DELAY:g} seconds",
                where,
                None,
            )
        return Action("delay", seconds=seconds, text=f"delay {_seconds_text(seconds)}")

    def fields(self, kind: Literal["reply", "set"], at: int) -> Action:
        found: list[FieldValue] = []
        spelled: list[str] = []
        starts: list[int] = []
        while (nxt := self.word()) is not None and "=" in nxt[0]:
            starts.append(nxt[1])
            path, path_text, value_at = self.path()
            value = self.value(value_at)
            found.append((path, value))
            spelled.append(f"{path_text}={compact_text(value)}")
        if not found:
            usage = (
                "FIELD=VALUE... (reply puback=0)" if kind == "reply" else "PATH=JSON (set puback=0)"
            )
            nxt = self.word()
            raise self.error(f"{kind} needs {usage}", nxt[1] if nxt else self.end(), None)
        if kind == "set" and len(found) > 1:
            raise self.error(
                "set changes exactly one field; write one rule per field", starts[1], None
            )
        action = Action(kind, fields=tuple(found), text=" ".join([kind, *spelled]))
        if kind == "reply":
            try:  # fields that cannot nest together fail now, not on the wire
                action.reply_object(0, None)
            except ValueError as e:
                raise self.error(str(e), starts[0], None) from None
        return action

    def path(self) -> tuple[tuple[PathKey, ...], str, int]:
        m = _WORD.match(self.text, self.pos)
        assert m is not None
        start = m.start(1)
        eq = self.text.index("=", start)
        path_text = self.text[start:eq]
        if not path_text:
            raise self.error("a field name is missing before '='", start, None)
        keys: list[PathKey] = []
        offset = start
        for depth, segment in enumerate(path_text.split(".")):
            if not _SEGMENT.fullmatch(segment):
                raise self.error(
                    f"bad field name {path_text!r}: write a dotted path like "
                    "payload.callbackArgs.1",
                    offset,
                    None,
                )
            if segment.isdigit():
                if depth == 0:
                    raise self.error(
                        f"{path_text!r}: a path starts with a key, not an index", offset, None
                    )
                keys.append(int(segment))
            else:
                keys.append(_KEY_ALIASES.get(segment.lower(), segment))
            offset += len(segment) + 1
        return tuple(keys), path_text, eq + 1

    def value(self, at: int) -> Any:
        """JSON at ``at`` (spaces allowed inside); a bare word that is not JSON is a string."""
        text = self.text
        if at >= len(text) or text[at].isspace():
            raise self.error("a value is missing after '='", at, None)
        try:
            value, end = _JSON.raw_decode(text, at)
        except (ValueError, RecursionError):
            end = -1
        if end != -1 and (end == len(text) or text[end].isspace()):
            self.pos = end
            return value
        if text[at] in '"[{':
            raise self.error(
                f'bad JSON value {text[at:].split()[0]!r} (quote strings with "...")', at, None
            )
        m = _WORD.match(text, at)
        assert m is not None
        self.pos = m.end()
        return m.group(1)

    def limits(self) -> tuple[int | None, int]:
        times: int | None = None
        after: int | None = None
        while self.word() is not None:
            word, at = self.take()
            low = word.lower()
            if low == "once":
                if times is not None:
                    raise self.error("the limit is given twice (once, times N)", at)
                times = 1
            elif low in ("times", "after"):
                count = self.word()
                if count is None or not (count[0].isascii() and count[0].isdigit()):
                    index = count[1] if count else self.end()
                    raise self.error(f"{low} needs a whole number ({low} 3)", index, None)
                self.take()
                n = int(count[0])
                if n < 1:
                    raise self.error(f"{low} {n}: the number must be at least 1", count[1], None)
                if (times if low == "times" else after) is not None:
                    raise self.error(f"{low!r} is given twice", at)
                if low == "times":
                    times = n
                else:
                    after = n
            else:
                raise self.error(f"unexpected {word!r} after the action", at)
        return times, after or 0


def _limits_text(times: int | None, after: int) -> str:
    parts = []
    if after:
        parts.append(f"after {after}")
    if times == 1:
        parts.append("once")
    elif times is not None:
        parts.append(f"times {times}")
    return "".join(f" {p}" for p in parts)


def parse_rule(text: str, number: int = 1, source: str | None = None) -> Rule:
    """One rule from its text; RuleError (with the column) when it cannot be understood."""
    arrow = _find_arrow(text)
    if arrow == -1:
        raise RuleError(
            "'->' is missing",
            len(text.rstrip()) + 1,
            text=text,
            hint=f"write MATCH -> ACTION; {ACTIONS_HELP}",
        )
    match_text = text[:arrow]
    if not match_text.strip():
        raise RuleError(
            "MATCH is missing before '->' (a rule must say which messages it acts on)",
            arrow + 1,
            text=text,
            hint=TERMS_HELP,
        )
    try:
        match = Filter.parse(match_text)
    except FilterError as e:
        # The filter counts columns in match_text, which starts the rule text.
        # the terms help a mistake in the syntax; a bad value's message says what fits
        hint = e.hint or (None if isinstance(e, FieldValueError) else TERMS_HELP)
        raise RuleError(e.message, e.column or 1, text=text, hint=hint) from None
    action, times, after = _ActionParser(text, arrow + 2).parse()
    normalised = f"{match.expression} -> {action.text}{_limits_text(times, after)}"
    return Rule(number, normalised, match, action, times=times, after=after, source=source)


# ---------------------------------------------------------------------------- files


def load_rules(path: str | Path, first_number: int = 1) -> list[Rule]:
    """The rules of a TOML file: ``[[rule]]`` (or ``[[rules]]``) tables of ``match``/``action``.

    An optional ``enabled = false`` starts a rule switched off. Every error names the
    file and the table; a rule's column counts in ``MATCH -> ACTION`` as shown.
    """
    name = str(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as e:
        raise RuleError(f"cannot read the rules file: {e.strerror or e}", where=name) from None
    try:
        doc = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise RuleError(f"not UTF-8 text (byte {e.start})", where=name) from None
    except tomllib.TOMLDecodeError as e:
        raise RuleError(f"not valid TOML: {e}", where=name) from None
    unknown = sorted(set(doc) - {"rule", "rules"})
    if unknown:
        raise RuleError(
            f"unknown top-level key {unknown[0]!r}; write rules as [[rule]] tables "
            "with match and action",
            where=name,
        )
    if "rule" in doc and "rules" in doc:
        raise RuleError("both [[rule]] and [[rules]] tables: use one of them", where=name)
    key = "rule" if "rule" in doc else "rules"
    tables = doc.get(key, [])
    if not isinstance(tables, list):
        raise RuleError(f"'{key}' must be a list of tables: write [[{key}]]", where=name)
    rules: list[Rule] = []
    for i, table in enumerate(tables, start=1):
        where = f"{name}, [[{key}]] {i}"
        if not isinstance(table, dict):
            raise RuleError(f"'{key}' must be a list of tables: write [[{key}]]", where=name)
        rules.append(_rule_of_table(table, where, first_number + len(rules), name))
    return rules


def _rule_of_table(table: dict[str, Any], where: str, number: int, source: str) -> Rule:
    extra = sorted(set(table) - {"match", "action", "enabled"})
    if extra:
        raise RuleError(
            f"unknown key {extra[0]!r}; a rule table has match, action and optionally enabled",
            where=where,
        )
    for needed in ("match", "action"):
        if needed not in table:
            raise RuleError(
                f"'{needed}' is missing (a rule table needs match and action)", where=where
            )
        if not isinstance(table[needed], str):
            raise RuleError(f"'{needed}' must be a string", where=where)
    enabled = table.get("enabled", True)
    if not isinstance(enabled, bool):
        raise RuleError("'enabled' must be true or false", where=where)
    text = f"{table['match'].strip()} -> {table['action'].strip()}"
    if _find_arrow(table["match"]) != -1:
        raise RuleError("'match' holds '->': put the action in 'action'", where=where)
    try:
        rule = parse_rule(text, number, source)
    except RuleError as e:
        e.where = where
        raise
    rule.enabled = enabled
    return rule


def combine(cli_texts: Sequence[str], file_rules: Sequence[Rule] = ()) -> list[Rule]:
    """Command-line rules first (1, 2, ...), then the file's, numbered after them."""
    rules = [parse_rule(text, i) for i, text in enumerate(cli_texts, start=1)]
    for rule in file_rules:
        rules.append(dataclasses.replace(rule, number=len(rules) + 1))
    return rules


# ---------------------------------------------------------------------------- a set


class RuleSet:
    """The active rules in order, with counts; ``generation`` changes on every change.

    The TUI redraws its rule list when ``generation`` moves; the relay asks
    :meth:`first_match` for each message of a gated direction.
    """

    def __init__(self, rules: Iterable[Rule] = ()) -> None:
        self.rules = list(rules)
        self.generation = 0
        self.listeners: list[Callable[[], None]] = []
        """Called when rules are replaced or switched (not on counts): the relay then
        knows whether any rule is in force."""

    def __bool__(self) -> bool:
        return bool(self.rules)

    def __len__(self) -> int:
        return len(self.rules)

    def first_match(self, row: Row, msg: Message | None, text_of: TextOf) -> Rule | None:
        """The rule that acts on this message (counted as matched and applied), or None.

        A rule whose MATCH holds but whose limit says no (``after`` not reached,
        ``times`` spent) counts the match and lets later rules look.
        """
        for rule in self.rules:
            if not rule.enabled or not rule.match(row, msg, text_of):
                continue
            rule.matched += 1
            self.generation += 1
            if rule.matched <= rule.after or rule.spent:
                continue
            rule.applied += 1
            return rule
        return None

    def not_applied(self, rule: Rule) -> None:
        """The relay could not carry ``rule`` out (a ``set`` path missing): uncount it."""
        if rule.applied > 0:
            rule.applied -= 1
            self.generation += 1

    def get(self, number: int) -> Rule:
        for rule in self.rules:
            if rule.number == number:
                return rule
        numbers = ", ".join(str(r.number) for r in self.rules) or "none"
        raise ValueError(f"there is no rule {number} (rules: {numbers})")

    def toggle(self, number: int) -> bool:
        """Switch rule ``number`` on or off; returns its new state."""
        rule = self.get(number)
        rule.enabled = not rule.enabled
        self.generation += 1
        self._tell()
        return rule.enabled

    def replace(self, rules: Iterable[Rule]) -> None:
        """New rules (a reload); one whose text is unchanged keeps its switch and counts."""
        old: dict[str, list[Rule]] = {}
        for rule in self.rules:
            old.setdefault(rule.text, []).append(rule)
        fresh = list(rules)
        for rule in fresh:
            same = old.get(rule.text)
            if same:
                before = same.pop(0)
                rule.enabled = before.enabled
                rule.matched = before.matched
                rule.applied = before.applied
        self.rules = fresh
        self.generation += 1
        self._tell()

    def _tell(self) -> None:
        for listener in list(self.listeners):
            listener()

    def stats(self) -> list[tuple[str, bool, int, int]]:
        """(label, enabled, matched, applied) per rule, for the TUI and the headless summary."""
        return [(r.label, r.enabled, r.matched, r.applied) for r in self.rules]
