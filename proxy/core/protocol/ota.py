"""Firmware and OTA updates: available updates (cb20), the update request (cb21), its
progress (cb22) and result (cb23), and what their numbers mean (protocol/README 4).

The target, method and device_type tables live here only; the analysis asks them
(``target_of_request``, ``target_of_device_type``, ``PHASE_NAMES``) rather than keeping
its own copies.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final, NamedTuple

from proxy.core.events import Side
from proxy.core.model import Message, Target
from proxy.core.protocol.common import (
    Arg,
    Field,
    FieldsFn,
    SummaryFn,
    _at,
    _bad,
    _fw,
    _in_ranges,
    _is_num,
    _json,
    _modules,
    _named,
    _num,
    _object_fields,
    _plain,
    _raw_fields,
    _replied,
    _sized,
)
from proxy.core.protocol.spec import CallbackSpec, callback

# ---------------------------------------------------------------------------
# What the numbers mean


class DeviceType(NamedTuple):
    """A cb21 reply's device or a cb22/cb23 device_type: what it is and what it updates."""

    name: str  # for the detail pane
    short: str  # for the timeline
    phase: str  # what its progress and result are about
    target: Target  # the update it belongs to


DEVICE_TYPES: Final[dict[int, DeviceType]] = {
    1: DeviceType("InvisOutlet", "outlet", "main firmware", "outlet"),
    2: DeviceType("InvisDeco", "deco", "deco firmware", "deco"),
    3: DeviceType(
        "InvisOutlet WWW (web UI) partition", "outlet WWW partition", "WWW partition", "outlet"
    ),
}
# The outlet's web UI: its result is the end of a phase, not of the update.
WWW_DEVICE_TYPE: Final = 3


class OtaTarget(NamedTuple):
    """A cb21 request's target."""

    name: str
    target: Target


TARGETS: Final[dict[int, OtaTarget]] = {
    1: OtaTarget("InvisOutlet", "outlet"),
    2: OtaTarget("InvisDeco", "deco"),
}


class Method(NamedTuple):
    """A cb21 request's method: how a deco gets its firmware (an outlet ignores it)."""

    meaning: str
    short: str


METHODS: Final[dict[int, Method]] = {
    0: Method("deco downloads over its own Wi-Fi", "Wi-Fi"),
    1: Method("deco is updated through the InvisOutlet", "via outlet"),
}

# The same tables as the plain {number: text} that _named reads.
_DEVICE_NAMES: Final = {n: d.name for n, d in DEVICE_TYPES.items()}
_DEVICE_SHORT: Final = {n: d.short for n, d in DEVICE_TYPES.items()}
PHASE_NAMES: Final = {n: d.phase for n, d in DEVICE_TYPES.items()}
_TARGET_NAMES: Final = {n: t.name for n, t in TARGETS.items()}
_TARGET_SHORT: Final[dict[int, str]] = {n: t.target for n, t in TARGETS.items()}
_METHOD_MEANINGS: Final = {n: m.meaning for n, m in METHODS.items()}
_METHOD_SHORT: Final = {n: m.short for n, m in METHODS.items()}


def target_of_request(target: int | None) -> Target | None:
    """The module a cb21 request's target number names; None for any other value."""
    spec = TARGETS.get(target) if target is not None else None
    return spec.target if spec is not None else None


def target_of_device_type(device_type: int | None) -> Target | None:
    """The update a cb22/cb23 device_type belongs to; None for any other value."""
    spec = DEVICE_TYPES.get(device_type) if device_type is not None else None
    return spec.target if spec is not None else None


# ---------------------------------------------------------------------------
# Readers for the analysis


def ota_request_target(args: Any) -> tuple[int | None, int | None]:
    """(target, method) of a cb21 request; None where missing or not an int."""
    target, method = _at(args, 0), _at(args, 1)
    return (
        target if type(target) is int else None,
        method if type(method) is int else None,
    )


def ota_device_type(args: Any) -> tuple[int | None, int | None]:
    """(device_type, value) of a cb22/cb23 push or the cb21 synchronous message.

    Read by position (README 7.2, 7.16): extra elements are ignored, not shifted.
    """
    dt, value = _at(args, 0), _at(args, 1)
    return (
        dt if type(dt) is int else None,
        value if type(value) is int else None,
    )


def firmware_versions(callback: int, args: Any) -> dict[str, tuple[str | None, str | None]]:
    """Running and available firmware per module, from a cb20 or cb12 payload.

    Keys only for the blocks present ("outlet" for IM, "deco" for PM); blank versions
    (a degraded module) are None.
    """
    if type(args) is not dict or callback not in (12, 20):
        return {}
    out: dict[str, tuple[str | None, str | None]] = {}
    for key, module in (("IM", "outlet"), ("PM", "deco")):
        block = args.get(key)
        if type(block) is not dict:
            continue
        available = _fw(block, "available_fw_rev") if callback == 20 else None
        out[module] = (_fw(block, "fw_rev"), available)
    return out


# ---------------------------------------------------------------------------
# Checks, fields and summaries


@_replied
def _check_updates(msg: Message, args: Any) -> None:
    if type(args) is not dict:
        _bad(msg, f"expected {{IM: {{...}}, PM: {{...}}}}, got {_json(args, 60)}")


@_object_fields
def _updates_fields(msg: Message, args: dict[Any, Any]) -> list[Field]:
    out: list[Field] = []
    pairs = (
        ("IM", "fw_rev", "available_fw_rev", "InvisOutlet firmware"),
        ("IM", "www_fw_rev", "available_www_fw_rev", "InvisOutlet web UI"),
        ("PM", "fw_rev", "available_fw_rev", "InvisDeco firmware"),
    )
    for block_key, cur_key, avail_key, what in pairs:
        block = args.get(block_key)
        if type(block) is not dict:
            continue
        cur, avail = _fw(block, cur_key), _fw(block, avail_key)
        if cur_key in block:
            out.append(Field(f"{block_key}.{cur_key}", _plain(block[cur_key]), f"{what}, running"))
        if avail_key in block:
            state = "up to date" if avail == cur else "update available"
            if avail is None:
                state = "unknown"
            out.append(
                Field(f"{block_key}.{avail_key}", _plain(block[avail_key]), f"{what}: {state}")
            )
    known: dict[str, tuple[str, ...]] = {
        "IM": ("fw_rev", "available_fw_rev", "www_fw_rev", "available_www_fw_rev"),
        "PM": ("fw_rev", "available_fw_rev"),
    }
    for key, block in _modules(args, out):
        for sub, v in block.items():
            if sub not in known[key]:
                out.extend(_raw_fields(f"{key}.{sub}", v, ""))
    return out


def _sum_updates(msg: Message, args: Any) -> str | None:
    if type(args) is not dict:
        return None
    parts: list[str] = []
    for key, cur_key, avail_key, what in (
        ("IM", "fw_rev", "available_fw_rev", "outlet"),
        ("IM", "www_fw_rev", "available_www_fw_rev", "WWW"),
        ("PM", "fw_rev", "available_fw_rev", "deco"),
    ):
        block = args.get(key)
        if type(block) is not dict or (cur_key not in block and avail_key not in block):
            continue
        cur, avail = _fw(block, cur_key), _fw(block, avail_key)
        if avail is None or avail == cur:
            parts.append(f"{what} {cur or '?'} up to date" if avail else f"{what} {cur or '?'}")
        else:
            parts.append(f"{what} {cur or '?'} → {avail}")
    return ", ".join(parts) if parts else None


def _early_target(a: Any) -> str:
    return " (0 was the 0-based target of early library versions)" if a == 0 else ""


# What each position of cb21's request and of its synchronous status may hold, and of
# cb22's and cb23's pushes.
_REQUEST_ARGS: Final = (
    Arg("target", 1, 2, "should be 1 (outlet) or 2 (deco)", hint=_early_target),
    Arg("method", 0, 1, "should be 0 (deco Wi-Fi) or 1 (via outlet)"),
)
_SYNC_ARGS: Final = (
    Arg("device", 1, 3, "should be 1, 2 or 3"),
    Arg("status", 0, 1, "should be 1 (continues) or 0 (failed)"),
)
_DEVICE_TYPE_ARG: Final = Arg("device_type", 1, 3, "should be 1, 2 or 3")
_PROGRESS_ARGS: Final = (_DEVICE_TYPE_ARG, Arg("percent", 0, 100, "outside 0-100", whole=False))
_RESULT_ARGS: Final = (
    _DEVICE_TYPE_ARG,
    Arg("status", 0, 1, "should be 1 (success) or 0 (failure)"),
)


def _check_ota_request(msg: Message, side: Side, args: Any) -> None:
    if side == "app":
        if _sized(msg, args, 2, "[target 1|2, method 0|1]"):
            _in_ranges(msg, args, _REQUEST_ARGS)
    elif _sized(msg, args, 2, "[device, status 1|0]"):
        _in_ranges(msg, args, _SYNC_ARGS)


# cb21-23 read their two arguments by position (README 7.2, 7.16), so a longer list is
# still read, its trailing values shown raw; a shorter one is all raw.
_Pair = Callable[[Message, Any, Any], list[Field]]


def _fields_by_position(extra: str) -> Callable[[_Pair], FieldsFn]:
    def wrap(show: _Pair) -> FieldsFn:
        def fields(msg: Message, args: Any) -> list[Field]:
            if type(args) is not list or len(args) < 2:
                return [] if args is None else _raw_fields("callbackArgs", args)
            out = show(msg, args[0], args[1])
            if len(args) > 2:
                out.extend(_raw_fields("extra", args[2:], extra))
            return out

        return fields

    return wrap


def _summary_by_position(show: Callable[[Message, Any, Any], str]) -> SummaryFn:
    def summarise(msg: Message, args: Any) -> str | None:
        return show(msg, args[0], args[1]) if type(args) is list and len(args) >= 2 else None

    return summarise


@_fields_by_position("unexpected trailing values")
def _ota_request_fields(msg: Message, a: Any, b: Any) -> list[Field]:
    if msg.side == "app":
        method = _named(_METHOD_MEANINGS, b)
        if a == 1 and type(b) is int and b in METHODS:
            method += " (the outlet ignores it)"
        return [
            Field("target", _json(a, 40), _named(_TARGET_NAMES, a)),
            Field("method", _json(b, 40), method),
        ]
    status = {1: "the update continues", 0: "failed"}
    return [
        Field("device", _json(a, 40), _named(_DEVICE_NAMES, a)),
        Field("status", _json(b, 40), _named(status, b)),
    ]


@_summary_by_position
def _sum_ota_request(msg: Message, a: Any, b: Any) -> str:
    if msg.side == "app":
        target = _named(_TARGET_SHORT, a, f"target {_json(a, 20)}")
        method = _named(_METHOD_SHORT, b, _json(b, 20))
        return f"{target} (method {method})"
    device = _named(_DEVICE_SHORT, a, f"device {_json(a, 20)}")
    status = _named({1: "continues", 0: "failed"}, b, f"status {_json(b, 20)}")
    return f"{device} {status}"


def _check_ota_push(msg: Message, side: Side, args: Any) -> None:
    # Fast path: progress pushes arrive by the hundred during an update.
    if type(args) is list and len(args) == 2:
        dt, value = args
        if (
            type(dt) is int
            and 1 <= dt <= 3
            and type(value) is int
            and 0 <= value <= (100 if msg.callback == 22 else 1)
        ):
            return
    _check_ota_push_slow(msg, args)


def _check_ota_push_slow(msg: Message, args: Any) -> None:
    if type(args) is not list or len(args) != 2:
        n = len(args) if type(args) is list else None
        if n is not None and n > 2:
            _bad(
                msg,
                f"{n} args, expected 2 [device_type, value]; read positionally, extras "
                "ignored (early library versions assumed [_, device, value])",
            )
        else:
            _bad(msg, f"expected [device_type, value], got {_json(args, 60)}")
        if n is None or n < 2:
            return
    _in_ranges(msg, args, _PROGRESS_ARGS if msg.callback == 22 else _RESULT_ARGS)


@_fields_by_position("unexpected trailing values (ignored)")
def _ota_push_fields(msg: Message, dt: Any, value: Any) -> list[Field]:
    out = [Field("device_type", _json(dt, 40), _named(_DEVICE_NAMES, dt))]
    if msg.callback == 22:
        pct = f"{_num(value)} %" if _is_num(value) else "not a number"
        out.append(Field("percent", _json(value, 40), pct))
    else:
        out.append(Field("status", _json(value, 40), _result_text(dt, value)))
    return out


def _result_text(dt: Any, status: Any) -> str:
    if status == 1 and type(status) is int:
        if dt == 3:
            return "WWW partition done; the main phase follows"
        return "succeeded; the device reboots now"
    if status == 0 and type(status) is int:
        return "failed"
    return "unknown status"


@_summary_by_position
def _sum_ota_push(msg: Message, dt: Any, value: Any) -> str:
    device = _named(_DEVICE_SHORT, dt, f"device_type {_json(dt, 20)}")
    if msg.callback == 22:
        return f"{device} {_num(value)} %"
    if value == 1 and type(value) is int:
        return f"{device} done, main phase follows" if dt == 3 else f"{device} succeeded, rebooting"
    if value == 0 and type(value) is int:
        # 0 means "failed" on the wire, but the first one of every update is a harmless
        # quirk: the analysis, which knows which this is, gives the verdict
        return f"{device} status 0"
    return f"{device} status {_json(value, 20)}"


def _ota_head(msg: Message) -> str:
    # with a PUBACK it is the ack (whatever it carries); without, the revB sync status
    return "OTA ack" if msg.puback is not None else "OTA status"


# ---------------------------------------------------------------------------
# The specs


def _push_callback(number: int, name: str, label: str, arguments: str) -> CallbackSpec:
    """cb22 and cb23: the outlet's pushes of [device_type, value], read by the analysis."""
    return callback(
        number,
        name,
        label,
        arguments=arguments,
        check=_check_ota_push,
        fields=_ota_push_fields,
        summary=_sum_ota_push,
        push_only=True,
        eager=True,
    )


SPECS: Final[tuple[CallbackSpec, ...]] = (
    callback(
        20,
        "Request available updates",
        "Updates",
        arguments="request: none; reply: {IM: {fw_rev, available_fw_rev, ...}, PM: {...}}",
        check=_check_updates,
        fields=_updates_fields,
        summary=_sum_updates,
        eager=True,
    ),
    callback(
        21,
        "Perform OTA update",
        "OTA update",
        arguments="request: [target 1|2, method 0|1]; sync status: [device, status 1|0]",
        check=_check_ota_request,
        fields=_ota_request_fields,
        summary=_sum_ota_request,
        pushed=True,
        ff=True,
        ok="will update",
        fail="could not start the update",
        refusal_note="; the request was refused",
        outlet_head=_ota_head,
        eager=True,
    ),
    _push_callback(
        22, "OTA download progress", "OTA progress", "push: [device_type 1-3, percent 0-100]"
    ),
    _push_callback(23, "OTA result", "OTA result", "push: [device_type 1-3, status 1|0]"),
)
