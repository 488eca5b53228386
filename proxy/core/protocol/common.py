"""Helpers every callback family shares: total JSON text, number tests, field rows.

Nothing here raises on any JSON value: decoding never refuses a message, and the texts
for people are built from whatever the wire carried. The underscore names are private
to this package: its modules share them, nothing outside imports them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any, Final, NamedTuple

import orjson

from proxy.core.events import Side
from proxy.core.model import Annotation, Message

_dumps: Final = orjson.dumps
_DumpError: Final = orjson.JSONEncodeError
compact_text: Final = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
"""A JSON value as the protocol sends it: no spaces, UTF-8 kept (one encoder for all)."""


def _json(value: Any, limit: int = 0) -> str:
    text: str = compact_text(value)
    if limit and len(text) > limit:
        return text[: limit - 1] + "…"
    return text


def _first(args: Any) -> Any:
    if type(args) is list and args:
        return args[0]
    return None


def _at(args: Any, i: int) -> Any:
    if type(args) is list and len(args) > i:
        return args[i]
    return None


def _is_num(v: Any) -> bool:
    t = type(v)
    return t is int or t is float


def _num(v: Any) -> str:
    """A number as people write it; anything else as JSON."""
    if type(v) is int:
        return str(v)
    if type(v) is float:
        return str(int(v)) if v.is_integer() and abs(v) < 1e15 else f"{v:g}"
    return _json(v, 60)


def _int_in(v: Any, lo: int, hi: int) -> bool:
    return type(v) is int and lo <= v <= hi


def _num_in(v: Any, lo: float, hi: float) -> bool:
    t = type(v)
    return (t is int or t is float) and lo <= v <= hi


def _int_like(value: Any) -> int | None:
    """An int-like callbackName ("21", 21.0) as its number; None otherwise."""
    if type(value) is str:
        try:
            return int(value, 10)
        except ValueError:
            return None
    if type(value) is float and value.is_integer():
        return int(value)
    return None


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _fw(block: Any, key: str) -> str | None:
    if type(block) is not dict:
        return None
    v = block.get(key)
    if type(v) is str:
        v = v.strip()
        return v or None
    if _is_num(v):
        return _num(v)
    return None


# ---------------------------------------------------------------------------
# What a callback spec's functions look like


class Field(NamedTuple):
    """One named value and what it means, ready to show."""

    name: str
    value: str
    meaning: str


# (msg, side, args) -> None, annotating `bad-args`; runs in decode, so it must be cheap.
Check = Callable[[Message, Side, Any], None]
# (msg, args) -> the arguments with their meanings; runs only when a message is shown.
FieldsFn = Callable[[Message, Any], list[Field]]
# (msg, args) -> the timeline's text after the head; None: show the arguments raw.
SummaryFn = Callable[[Message, Any], str | None]


def _bad(msg: Message, text: str) -> None:
    msg.annotations.append(Annotation("bad-args", "warning", text))


def _no_args(msg: Message, side: Side, args: Any) -> None:
    if side == "app" and args is not None and args != [] and args != {}:
        _bad(msg, f"cb{msg.callback} takes no arguments, got {_json(args, 60)}")


def _raw_fields(name: str, value: Any, meaning: str = "not decoded; shown raw") -> list[Field]:
    return [Field(name, _json(value), meaning)]


# The checks of one side's arguments, which the combinators below give a direction.
SideCheck = Callable[[Message, Any], None]


def _replied(check_reply: SideCheck) -> Check:
    """The check of a fetch: its request carries nothing, and its reply or push is
    checked by ``check_reply`` when it carries anything (cb1, 3, 9, 11, 12, 15, 20)."""

    def check(msg: Message, side: Side, args: Any) -> None:
        if side == "app":
            _no_args(msg, side, args)
        elif args is not None:
            check_reply(msg, args)

    return check


def _requested(check_request: SideCheck) -> Check:
    """The check of a command: only the app's arguments are defined; the outlet's
    PUBACK carries none worth checking."""

    def check(msg: Message, side: Side, args: Any) -> None:
        if side == "app":
            check_request(msg, args)

    return check


class Arg(NamedTuple):
    """One positional integer argument's range, and what to say when it is outside."""

    name: str
    lo: int
    hi: int
    wrong: str  # follows "<name> <value> ": "should be 0 or 1", "outside 0-100"
    whole: bool = True  # False: any number in the range will do
    hint: Callable[[Any], str] | None = None  # more words on a particular wrong value


def _sized(msg: Message, args: Any, n: int, expected: str) -> bool:
    """Whether ``args`` is a list of ``n``; annotates what was expected when it is not."""
    if type(args) is list and len(args) == n:
        return True
    _bad(msg, f"expected {expected}, got {_json(args, 60)}")
    return False


def _one_in(expected: str, lo: int, hi: int, *, whole: bool = True) -> SideCheck:
    """The check of a list of one value in [lo, hi] (any number unless ``whole``);
    ``expected`` says what should have come when anything else does."""

    def check(msg: Message, args: Any) -> None:
        if type(args) is list and len(args) == 1:
            v = args[0]
            if _int_in(v, lo, hi) if whole else _num_in(v, lo, hi):
                return
        _bad(msg, f"expected {expected}, got {_json(args, 60)}")

    return check


def _in_ranges(msg: Message, values: list[Any], rules: tuple[Arg, ...]) -> None:
    """Annotates each value outside its ``Arg``'s range, in order."""
    for v, arg in zip(values, rules, strict=False):
        if not (_int_in(v, arg.lo, arg.hi) if arg.whole else _num_in(v, arg.lo, arg.hi)):
            hint = arg.hint(v) if arg.hint is not None else ""
            _bad(msg, f"{arg.name} {_json(v, 20)} {arg.wrong}{hint}")


def _fields_for(n: int) -> Callable[[Callable[[Message, list[Any]], list[Field]]], FieldsFn]:
    """Fields of a list of exactly ``n`` arguments; none when absent, any other shape raw."""

    def wrap(show: Callable[[Message, list[Any]], list[Field]]) -> FieldsFn:
        def fields(msg: Message, args: Any) -> list[Field]:
            if type(args) is list and len(args) == n:
                return show(msg, args)
            return [] if args is None else _raw_fields("callbackArgs", args)

        return fields

    return wrap


def _summary_for(n: int) -> Callable[[Callable[[Message, list[Any]], str]], SummaryFn]:
    """A summary of a list of exactly ``n`` arguments; any other shape is shown raw."""

    def wrap(show: Callable[[Message, list[Any]], str]) -> SummaryFn:
        def summarise(msg: Message, args: Any) -> str | None:
            return show(msg, args) if type(args) is list and len(args) == n else None

        return summarise

    return wrap


def _object_fields(show: Callable[[Message, dict[Any, Any]], list[Field]]) -> FieldsFn:
    """Fields of an object argument; none when absent, any other shape raw."""

    def fields(msg: Message, args: Any) -> list[Field]:
        if type(args) is dict:
            return show(msg, args)
        return [] if args is None else _raw_fields("callbackArgs", args)

    return fields


def _modules(args: dict[Any, Any], out: list[Field]) -> Iterator[tuple[str, dict[Any, Any]]]:
    """The IM and PM blocks of a cb12 or cb20 object, in order; any other key goes to
    ``out`` raw, where it stands."""
    for key, block in args.items():
        if key in ("IM", "PM") and type(block) is dict:
            yield key, block
        else:
            out.extend(_raw_fields(str(key), block, ""))


def _named(table: dict[int, str], v: Any, default: str | None = None) -> str:
    """The table's word for ``v``, else ``default``, else why there is none."""
    if type(v) is int and v in table:
        return table[v]
    if default is not None:
        return default
    return "unknown value" if type(v) is int else "not an integer"


def _plain(v: Any) -> str:
    return v if type(v) is str else _json(v, 100)


def _no_fields(msg: Message, args: Any) -> list[Field]:
    return [] if args is None else _raw_fields("callbackArgs", args, "unexpected arguments")


def _sum_raw(msg: Message, args: Any) -> str | None:
    """No summary of its own (no arguments are defined): the arguments are shown raw."""
    return None


def _sum_single(labels: dict[int, str]) -> SummaryFn:
    @_summary_for(1)
    def summarise(msg: Message, args: list[Any]) -> str:
        return _named(labels, args[0], _json(args[0], 20))

    return summarise


_ON_OFF: Final = {0: "off", 1: "on"}
