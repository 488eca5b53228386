"""The ``intervention`` object of a data record (DESIGN 4.1), shared by traces and captures.

Both formats spell it the same way (a map with ``action``, ``by``, ``rule``, ``held`` and,
beyond 4.1, ``why``), so encoding and validating it lives here once. Readers are strict
about the keys they know (a bad value is a RecordError naming the field, never a
traceback) and ignore the ones they do not, so a newer writer can add some.

The received bytes of a changed message (``original``) are kept only beside an
intervention: they say what the intervention changed, and a record without one takes
the readers' fast path, which looks at no further key.
"""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Mapping
from typing import Any

from proxy.core.events import INTERVENTION_ACTIONS, INTERVENTION_BY, Intervention


def encode_intervention(mark: Intervention) -> dict[str, Any]:
    """The map both formats store (DESIGN 4.1)."""
    return mark.as_record()


def decode_intervention(value: object) -> Intervention:
    """The Intervention a record holds, or ValueError whose message names the field.

    The store's readers turn the ValueError into their RecordError (this module cannot
    import it: the records module imports this one).
    """
    if not isinstance(value, Mapping):
        raise ValueError(f"field 'intervention' should be an object, not {_short(value)}")
    action = value.get("action")
    if action not in INTERVENTION_ACTIONS:
        allowed = ", ".join(INTERVENTION_ACTIONS)
        raise ValueError(
            f"field 'intervention.action' should be one of {allowed}, not {_short(action)}"
        )
    by = value.get("by")
    if by not in INTERVENTION_BY:
        raise ValueError(f"field 'intervention.by' should be 'rule' or 'user', not {_short(by)}")
    rule = _text(value, "rule")
    why = _text(value, "why")
    held = value.get("held")
    if held is not None:
        if isinstance(held, bool) or not isinstance(held, int | float):
            raise ValueError(
                f"field 'intervention.held' should be seconds or null, not {_short(held)}"
            )
        try:
            held = float(held)
        except OverflowError:
            held = math.inf
        if not (math.isfinite(held) and held >= 0.0):
            raise ValueError(
                f"field 'intervention.held' should be a finite number of seconds >= 0, "
                f"not {_short(value.get('held'))}"
            )
    return Intervention(action, by, rule, held, why)


def decode_original(rec: Mapping[str, Any]) -> bytes | None:
    """The received bytes of a changed message: ``original`` (a capture's bin) or
    ``original_text`` / ``original_b64`` (a trace, the same rule as ``text`` / ``b64``);
    None when absent; ValueError naming the field when malformed."""
    raw, text, b64 = rec.get("original"), rec.get("original_text"), rec.get("original_b64")
    given = [
        k
        for k, v in (("original", raw), ("original_text", text), ("original_b64", b64))
        if v is not None
    ]
    if len(given) > 1:
        raise ValueError(
            f"a data event has both {given[0]!r} and {given[1]!r}; which was received?"
        )
    if raw is not None:
        if not isinstance(raw, bytes):
            raise ValueError(f"field 'original' should be bytes (msgpack bin), not {_short(raw)}")
        return raw
    if text is not None:
        if not isinstance(text, str):
            raise ValueError(f"field 'original_text' should be a string, not {_short(text)}")
        try:
            return text.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError(
                "field 'original_text' holds an unpaired surrogate, not UTF-8"
            ) from None
    if b64 is not None:
        if not isinstance(b64, str):
            raise ValueError(f"field 'original_b64' should be a string, not {_short(b64)}")
        try:
            return base64.b64decode(b64, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ValueError(f"field 'original_b64' is not valid base64 ({exc})") from None
    return None


def trace_original(original: bytes, text: bool) -> dict[str, str]:
    """How a trace spells the received bytes: as ``text``/``b64`` are (text when the event
    is text and the bytes are UTF-8)."""
    if text:
        try:
            return {"original_text": original.decode("utf-8")}
        except UnicodeDecodeError:
            pass
    return {"original_b64": base64.b64encode(original).decode("ascii")}


def _text(value: Mapping[Any, Any], key: str) -> str | None:
    text = value.get(key)
    if text is None:
        return None
    if not isinstance(text, str):
        raise ValueError(
            f"field 'intervention.{key}' should be a string or null, not {_short(text)}"
        )
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(
            f"field 'intervention.{key}' holds an unpaired surrogate, not UTF-8"
        ) from None
    return text


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
