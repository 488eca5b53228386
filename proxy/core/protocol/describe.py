"""What a message means for people: its fields and its one-line summary.

Computed on demand, only for messages on screen, from the callback's spec.
"""

from __future__ import annotations

from proxy.core.model import Message
from proxy.core.protocol.catalog import CATALOG, name_of, puback_meaning
from proxy.core.protocol.common import Field, _clip, _json, _raw_fields


def fields(msg: Message) -> list[Field]:
    """The message's PUBACK and arguments, each with its meaning."""
    if msg.kind == "invalid":
        return []
    out: list[Field] = []
    if msg.puback is not None:
        out.append(Field("PUBACK", _json(msg.puback, 40), puback_meaning(msg.callback, msg.puback)))
    if msg.callback is None:
        if msg.args is not None:
            out.extend(_raw_fields("callbackArgs", msg.args))
        return out
    spec = CATALOG.get(msg.callback)
    if spec is None:
        if msg.args is not None:
            out.extend(_raw_fields("callbackArgs", msg.args, "unknown callback; shown raw"))
        return out
    out.extend(spec.fields(msg, msg.args))
    return out


def summary(msg: Message) -> str:
    """One line for the timeline."""
    if msg.kind == "invalid":
        for a in msg.annotations:
            if a.code == "invalid-json":
                return f"invalid: {_clip(a.text, 100)}"
        return "invalid"
    cb = msg.callback
    args = msg.args
    puback = msg.puback
    if args is None and (cb is None or msg.side == "outlet"):
        if puback is not None:
            return f"ack: PUBACK {_json(puback, 20)} ({puback_meaning(cb, puback)})"
        if cb is None:
            return "no callback" if msg.side == "app" else "ack: no PUBACK"
    if cb is None:
        return f"no callback: {_json(args, 80)}"
    spec = CATALOG.get(cb)
    if spec is None:
        head = name_of(cb)
        return head if args is None else f"{head}: {_json(args, 80)}"
    if args is None:
        return spec.name
    text = spec.summary(msg, args)
    if text is None:
        text = _json(args, 80)
    # Requests read as commands ("Perform OTA update: ..."), outlet messages as state.
    if msg.side == "app":
        head = spec.name
    else:
        head = spec.label if spec.outlet_head is None else spec.outlet_head(msg)
    tail = ""
    if puback == 0 and type(puback) is int:
        tail = f" [PUBACK 0: {puback_meaning(cb, 0)}]"
    line = f"{head}: {text}{tail}"
    # Device strings (names, versions) are shown verbatim; keep them on one line.
    return line if line.isprintable() else _printable(line)


def _printable(text: str) -> str:
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
