"""Duplicate keys: a frame that may mean something else to the outlet than it shows here.

JSON parsers disagree on which value of a repeated key wins (Python's json and orjson
keep the last; the firmware's parser is unknown). ``decode`` pays for the full scan only
when a cheap test (``_may_repeat_keys``) cannot rule a duplicate out.
"""

from __future__ import annotations

import json
from typing import Any

from proxy.core.model import Message
from proxy.core.protocol.common import _DumpError, _dumps, _int_like, _json


class _Pairs(list[tuple[str, Any]]):
    """An object as its (key, value) pairs in order, duplicates kept."""


def _pairs_hook(pairs: list[tuple[str, Any]]) -> _Pairs:
    return _Pairs(pairs)


def _last_wins(value: Any) -> Any:
    """``value`` read back as json would read it (the last duplicate wins)."""
    if type(value) is _Pairs:
        return {k: _last_wins(v) for k, v in value}
    if type(value) is list:
        return [_last_wins(v) for v in value]
    return value


def _parse_pairs(raw: bytes) -> Any:
    """``raw`` with every object as :class:`_Pairs`; None if it does not parse."""
    try:
        return json.loads(raw, object_pairs_hook=_pairs_hook)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None


def duplicate_keys(raw: bytes) -> list[tuple[str, list[Any]]]:
    """Each key repeated inside one object of ``raw``, as (path, every value in order);
    paths join keys and array indexes with dots (``payload.callbackArgs.0.x``)."""
    found: list[tuple[str, list[Any]]] = []
    todo: list[tuple[str, Any]] = [("", _parse_pairs(raw))]
    while todo:
        path, node = todo.pop()
        if type(node) is list:
            todo += [(f"{path}{i}.", v) for i, v in reversed(list(enumerate(node)))]
        elif type(node) is _Pairs:
            values: dict[str, list[Any]] = {}
            for k, v in node:
                values.setdefault(k, []).append(v)
            for k, vs in values.items():
                if len(vs) > 1:
                    found.append((path + k, [_last_wins(v) for v in vs]))
            for k, v in reversed(node):
                todo.append((f"{path}{k}.", v))
    return sorted(found, key=lambda item: item[0].count("."))


def possible_callbacks(raw: bytes) -> set[int]:
    """Every callback ``raw`` names as ``payload.callbackName``, whichever duplicate of
    ``payload`` or ``callbackName`` a parser keeps (int-like names read as numbers)."""
    top = _parse_pairs(raw)
    if type(top) is not _Pairs:
        return set()
    out: set[int] = set()
    for key, payload in top:
        if key == "payload" and type(payload) is _Pairs:
            for name, cb in payload:
                if name == "callbackName":
                    number = cb if type(cb) is int else _int_like(cb)
                    if number is not None:
                        out.add(number)
    return out


def _may_repeat_keys(raw: bytes, value: Any) -> bool:
    """A cheap test that never misses a duplicate key. ``value`` written back compactly
    is usually ``raw`` itself (then every key survived). Otherwise: each key has its
    ':', so a value that lost one to a duplicate is written with fewer ':' than ``raw``
    has; only a \\u escape (which may spell ':') or a value orjson cannot write needs
    the scan."""
    try:
        again = _dumps(value)
    except _DumpError:
        return True
    if again == raw:
        return False
    return raw.count(b":") != again.count(b":") or b"\\u" in raw


def _duplicate_annotation(msg: Message, raw: bytes) -> None:
    found = duplicate_keys(raw)
    if not found:
        return
    # Bounded: a hostile frame may repeat thousands of keys thousands of times.
    keys = "; ".join(
        f"{path} ({len(vs)} values: {', '.join(_json(v, 40) for v in vs[:3])}"
        f"{', …' if len(vs) > 3 else ''})"
        for path, vs in found[:5]
    )
    if len(found) > 5:
        keys += f"; and {len(found) - 5} more"
    text = (
        f"duplicate key{'s' if len(found) > 1 else ''} {keys}. Shown with the last value of "
        "each, as Python's json reads it; which one the outlet's parser keeps is unknown"
    )
    callbacks = possible_callbacks(raw)
    if len(callbacks) > 1:
        text += f", so it may act on any of {', '.join(f'cb{c}' for c in sorted(callbacks))}"
    msg.annotate("duplicate-key", "warning", text)
