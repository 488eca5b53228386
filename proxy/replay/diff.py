"""How a new reply differs from the recorded one (``replay send``), as pure functions.

packetIDs, cb11 sensor readings and timestamps are left out of the comparison: they
differ every time by nature. Apart from the script (proxy.replay.script), which says
what to send, as this says how to compare what came back.
"""

from __future__ import annotations

import json
from typing import Any, Final

VOLATILE_KEYS: Final = frozenset({"timestamp", "time", "ts", "uptime"})
"""Keys whose values differ on every run; the diff ignores them wherever they appear."""


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


MISSING: Final = _Missing()


def normalize_reply(callback: int | None, value: Any, *, ignore_sn: bool = False) -> Any:
    """A reply without what differs on every run: packetID, volatile keys, cb11 readings
    (their keys stay, so a sensor that appears or vanishes still shows), and sn if asked."""
    if not isinstance(value, dict):
        return value
    out = {k: _drop_volatile(v) for k, v in value.items() if k not in VOLATILE_KEYS}
    out.pop("packetID", None)
    if ignore_sn:
        out.pop("sn", None)
    payload = out.get("payload")
    if callback == 11 and isinstance(payload, dict):
        args = payload.get("callbackArgs")
        if isinstance(args, list) and len(args) >= 2 and isinstance(args[1], dict):
            readings = {k: "<reading>" for k in args[1]}
            out["payload"] = {**payload, "callbackArgs": [args[0], readings, *args[2:]]}
    return out


def _drop_volatile(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_volatile(v) for k, v in value.items() if k not in VOLATILE_KEYS}
    if isinstance(value, list):
        return [_drop_volatile(v) for v in value]
    return value


def diff_json(old: Any, new: Any, path: tuple[str | int, ...] = ()) -> list[tuple[str, Any, Any]]:
    """Every leaf that differs, as (path, old, new); MISSING marks an absent side."""
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[tuple[str, Any, Any]] = []
        for k in [*old, *(k for k in new if k not in old)]:
            out += diff_json(old.get(k, MISSING), new.get(k, MISSING), (*path, k))
        return out
    if isinstance(old, list) and isinstance(new, list):
        out = []
        for i in range(max(len(old), len(new))):
            a = old[i] if i < len(old) else MISSING
            b = new[i] if i < len(new) else MISSING
            out += diff_json(a, b, (*path, i))
        return out
    if type(old) is type(new) and old == new:
        return []
    return [(format_path(path), old, new)]


def format_path(path: tuple[str | int, ...]) -> str:
    """``IM.available_fw_rev`` inside the callback's arguments, ``PUBACK`` outside."""
    if path[:2] == ("payload", "callbackArgs"):
        path = path[2:]
        if not path:
            return "callbackArgs"
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += ("." if text else "") + part
    return text or "message"


def show(value: Any) -> str:
    if value is MISSING:
        return "(absent)"
    return _clip(_compact(value), 60)


def diff_reply(
    label: str,
    callback: int | None,
    recorded: Any,
    live: Any,
    *,
    ignore_sn: bool = False,
) -> list[str]:
    """Lines describing how a live reply differs from the recorded one ([] when alike).

    ``recorded``/``live`` are decoded replies, or MISSING when there was none.
    """
    if recorded is MISSING and live is MISSING:
        return []
    if live is MISSING:
        return [f"{label}: no reply (recorded: {show(recorded)})"]
    if recorded is MISSING:
        return [f"{label}: unexpected reply {show(live)} (none was recorded)"]
    a = normalize_reply(callback, recorded, ignore_sn=ignore_sn)
    b = normalize_reply(callback, live, ignore_sn=ignore_sn)
    lines = []
    for path, old, new in diff_json(a, b):
        if old is MISSING:
            lines.append(f"{label}: {path}: added {show(new)}")
        elif new is MISSING:
            lines.append(f"{label}: {path}: removed (was {show(old)})")
        else:
            lines.append(f"{label}: {path}: {show(old)} -> {show(new)}")
    return lines


# ---------------------------------------------------------------------- helpers


def _json_value(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return None


def _compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
