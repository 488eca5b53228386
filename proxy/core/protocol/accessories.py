"""The accessory callbacks: names (cb3, cb4), the two outlets (cb9, cb10), the
nightlight (cb14, cb15) and the colour light (cb17, cb18)."""

from __future__ import annotations

from functools import partial
from typing import Any, Final

from proxy.core.events import Side
from proxy.core.model import Message
from proxy.core.protocol.common import (
    _ON_OFF,
    Arg,
    Field,
    _bad,
    _fields_for,
    _in_ranges,
    _int_in,
    _is_num,
    _json,
    _named,
    _num,
    _num_in,
    _plain,
    _raw_fields,
    _replied,
    _requested,
    _sized,
    _summary_for,
)
from proxy.core.protocol.spec import CallbackSpec, callback

_ACCESSORIES: Final = {1: "top outlet", 2: "bottom outlet", 3: "nightlight"}

# ---------------------------------------------------------------------------
# Accessory names (cb3 reply, cb4 request)


@_replied
def _check_names_reply(msg: Message, args: Any) -> None:
    if type(args) is dict:
        args = args.get("payload")
    if type(args) is not list:
        _bad(msg, "expected a list of {accessory, name} (bare or wrapped in {payload: [...]})")


@_requested
def _check_names_set(msg: Message, args: Any) -> None:
    if type(args) is not list or not args:
        _bad(msg, f"expected a list of {{accessory, name}}, got {_json(args, 60)}")
        return
    for entry in args:
        if type(entry) is not dict or not _int_in(entry.get("accessory"), 1, 3):
            _bad(msg, f"entry {_json(entry, 60)}: accessory should be 1, 2 or 3")
            return
        if type(entry.get("name")) is not str:
            _bad(msg, f"entry {_json(entry, 60)}: name should be a string")
            return


def _names_fields(msg: Message, args: Any) -> list[Field]:
    if args is None:
        return []
    out: list[Field] = []
    entries = args
    if type(args) is dict and "payload" in args:
        entries = args["payload"]
        out.append(Field("form", "{payload: [...]}", "wrapped (documented form)"))
    elif type(args) is list and msg.side == "outlet":
        out.append(Field("form", "[...]", "bare array (real firmware)"))
    if type(entries) is not list:
        return _raw_fields("callbackArgs", args)
    for i, entry in enumerate(entries):
        if type(entry) is dict and "accessory" in entry:
            acc = entry.get("accessory")
            name = entry.get("name")
            out.append(
                Field(
                    f"accessory {_num(acc)}",
                    name if type(name) is str else _json(name, 60),
                    _named(_ACCESSORIES, acc),
                )
            )
        else:
            out.extend(_raw_fields(f"entry {i}", entry))
    return out


def _sum_names(msg: Message, args: Any) -> str | None:
    entries = args.get("payload") if type(args) is dict else args
    if type(entries) is not list:
        return None
    parts = []
    for e in entries:
        if type(e) is dict:
            parts.append(f"{_num(e.get('accessory'))} {_plain(e.get('name'))!r}")
    return ", ".join(parts) if parts else None


# ---------------------------------------------------------------------------
# Outlets (cb9 state, cb10 control)


def _outlet_pair(args: Any) -> tuple[Any, Any, Any] | None:
    """cb9's (wrapper, o1, o2), accepting ``[o1, o2]`` and ``[x, [o1, o2]]``."""
    if type(args) is not list or len(args) != 2:
        return None
    inner = args[1]
    if type(inner) is list:
        if len(inner) != 2:
            return None
        return args[0], inner[0], inner[1]
    return None, args[0], args[1]


@_replied
def _check_outlets(msg: Message, args: Any) -> None:
    pair = _outlet_pair(args)
    if pair is None or not (_int_in(pair[1], 0, 1) and _int_in(pair[2], 0, 1)):
        _bad(msg, f"expected [outlet1, outlet2] of 0/1 (or [x, [o1, o2]]), got {_json(args, 60)}")


def _outlets_fields(msg: Message, args: Any) -> list[Field]:
    if args is None:
        return []
    pair = _outlet_pair(args)
    if pair is None:
        return _raw_fields("callbackArgs", args)
    wrapper, o1, o2 = pair
    out: list[Field] = []
    if type(args[1]) is list:
        out.append(Field("wrapper", _json(wrapper, 40), "wrapped form [x, [o1, o2]]"))
    out.append(Field("outlet1", _num(o1), _named(_ON_OFF, o1)))
    out.append(Field("outlet2", _num(o2), _named(_ON_OFF, o2)))
    return out


def _sum_outlets(msg: Message, args: Any) -> str | None:
    pair = _outlet_pair(args)
    if pair is None:
        return None
    return f"1 {_named(_ON_OFF, pair[1], '?')}, 2 {_named(_ON_OFF, pair[2], '?')}"


_OUTLET_CONTROL_ARGS: Final = (
    Arg("outlet", 1, 2, "should be 1 or 2"),
    Arg("state", 0, 1, "should be 0 or 1"),
)


@_requested
def _check_outlet_control(msg: Message, args: Any) -> None:
    if _sized(msg, args, 2, "[outlet 1|2, state 0|1]"):
        _in_ranges(msg, args, _OUTLET_CONTROL_ARGS)


@_fields_for(2)
def _outlet_control_fields(msg: Message, args: list[Any]) -> list[Field]:
    return [
        Field("outlet", _num(args[0]), _named(_ACCESSORIES, args[0])),
        Field("state", _num(args[1]), _named(_ON_OFF, args[1])),
    ]


@_summary_for(2)
def _sum_outlet_control(msg: Message, args: list[Any]) -> str:
    return f"outlet {_num(args[0])} {_named(_ON_OFF, args[1], '?')}"


# ---------------------------------------------------------------------------
# Nightlight (cb14 control, cb15 state): both [on 0|1, brightness 0-100]


_ON_BRIGHTNESS_ARGS: Final = (
    Arg("on", 0, 1, "should be 0 or 1"),
    Arg("brightness", 0, 100, "outside 0-100", whole=False),
)


def _check_on_brightness(msg: Message, args: Any) -> None:
    if _sized(msg, args, 2, "[on 0|1, brightness 0-100]"):
        _in_ranges(msg, args, _ON_BRIGHTNESS_ARGS)


_check_nightlight_control: Final = _requested(_check_on_brightness)
_check_nightlight_state: Final = _replied(_check_on_brightness)


def _on_brightness_fields(msg: Message, args: Any) -> list[Field]:
    if type(args) is not list or len(args) != 2:
        return [] if args is None or args == [] else _raw_fields("callbackArgs", args)
    on, bri = args
    return [
        Field("on", _num(on), _named(_ON_OFF, on)),
        Field("brightness", _num(bri), f"{_num(bri)} %" if _is_num(bri) else "not a number"),
    ]


@_summary_for(2)
def _sum_on_brightness(msg: Message, args: list[Any]) -> str:
    return f"{_named(_ON_OFF, args[0], '?')}, {_num(args[1])} %"


# ---------------------------------------------------------------------------
# Colour light (cb17 control, cb18 state)

_LIGHTS: Final = {5: "nightlight", 7: "indicator", 1: "indicator (HA naming)"}


_MODES: Final = {
    1: "static HSV",
    2: "static temperature",
    3: "breathing",
    4: "strobing",
    5: "color cycle",
    6: "rainbow",
    7: "starry night",
}


def _check_color_state(msg: Message, side: Side, args: Any) -> None:
    """cb17's request and cb18's reply or push: [light, mode, [leds], ...]."""
    if type(args) is not list:
        _bad(msg, f"expected [light, mode, [leds], ...], got {_json(args, 60)}")
        return
    if side != "app" and len(args) < 3:
        return  # cb18 args are empty or short when no Aura is attached (README 6.17)
    if len(args) < 3:
        _bad(msg, f"expected [light, mode, [leds], speed?, random?, level?], got {len(args)} args")
        return
    if not _int_in(args[1], 1, 7):
        _bad(msg, f"mode {_json(args[1], 20)} outside 1-7")
    if type(args[2]) is not list:
        _bad(msg, f"the LED list should be a list, got {_json(args[2], 40)}")
    extra = args[3:]
    if len(extra) > 3:
        _bad(msg, f"{len(extra)} trailing values after the LED list (expected at most 3)")
    elif extra and not (
        _num_in(extra[0], 0, 7)
        and (len(extra) < 2 or _num_in(extra[1], 0, 1))
        and (len(extra) < 3 or _num_in(extra[2], 0, 100))
    ):
        _bad(msg, f"speed/random/level {_json(extra, 40)} outside 0-7 / 0-1 / 0-100")


def _check_color_control(msg: Message, side: Side, args: Any) -> None:
    if side == "app":
        _check_color_state(msg, side, args)


def _check_color_fetch(msg: Message, side: Side, args: Any) -> None:
    if side == "app":
        if type(args) is not list or len(args) != 1 or type(args[0]) is not int:
            _bad(msg, f"expected [light], got {_json(args, 60)}")
    elif args is not None:
        _check_color_state(msg, side, args)


def _led_meaning(entry: Any) -> str:
    if type(entry) is not list or len(entry) < 2:
        return "unrecognised LED entry"
    parts = [_named(_ON_OFF, entry[0])]
    if _is_num(entry[1]):
        parts.append(f"{_num(entry[1])} %")
    for item in entry[2:]:
        if type(item) is list and len(item) == 2 and all(_is_num(x) for x in item):
            parts.append(f"hue {_num(item[0])}°, sat {_num(item[1])} %")
        elif _is_num(item):
            parts.append(f"{_num(item)} K")
        else:
            parts.append(_json(item, 30))
    return ", ".join(parts)


def _color_fields(msg: Message, args: Any) -> list[Field]:
    if args is None:
        return []
    if type(args) is not list:
        return _raw_fields("callbackArgs", args)
    if not args:
        return [Field("callbackArgs", "[]", "empty: no Aura attached")]
    out = [Field("light", _json(args[0], 40), _named(_LIGHTS, args[0]))]
    if len(args) == 1:
        if msg.side != "app":
            out.append(Field("state", "absent", "short reply: no Aura attached"))
        return out
    mode = args[1]
    out.append(Field("mode", _json(mode, 40), _named(_MODES, mode)))
    if len(args) > 2:
        leds = args[2]
        if type(leds) is list:
            starry = mode == 7 and len(leds) == 2
            for i, led in enumerate(leds):
                label = ("background", "star colour")[i] if starry else f"led {i + 1}"
                out.append(Field(label, _json(led, 60), _led_meaning(led)))
        else:
            out.extend(_raw_fields("leds", leds))
    for i, (name, meaning) in enumerate((("speed", "0-7"), ("random", "0/1"), ("level", "0-100"))):
        if len(args) > 3 + i:
            out.append(Field(name, _json(args[3 + i], 40), meaning))
    if len(args) > 6:
        out.extend(_raw_fields("extra", args[6:], "undocumented trailing values"))
    return out


def _sum_color(msg: Message, args: Any) -> str | None:
    if type(args) is not list:
        return None
    if not args:
        return "empty (no Aura attached)"
    light = _named(_LIGHTS, args[0], f"light {_json(args[0], 20)}")
    if len(args) == 1:
        return light if msg.side == "app" else f"{light}: no state (no Aura attached)"
    mode = _named(_MODES, args[1], f"mode {_json(args[1], 20)}")
    leds = args[2] if len(args) > 2 and type(args[2]) is list else None
    return f"{light} {mode}" + (f", {len(leds)} LEDs" if leds is not None else "")


# ---------------------------------------------------------------------------
# The specs

# A fetch and its command carry the same arguments, so they read them alike.
_names_callback: Final = partial(callback, fields=_names_fields, summary=_sum_names)
_nightlight_callback: Final = partial(
    callback, fields=_on_brightness_fields, summary=_sum_on_brightness
)
_color_callback: Final = partial(callback, fields=_color_fields, summary=_sum_color)

SPECS: Final[tuple[CallbackSpec, ...]] = (
    _names_callback(
        3,
        "Request accessory names",
        "Names",
        arguments="request: none; reply: [{accessory, name}], bare or as {payload: [...]}",
        check=_check_names_reply,
    ),
    _names_callback(
        4,
        "Configure accessory names",
        "Set names",
        arguments="request: [{accessory 1-3, name}]",
        check=_check_names_set,
    ),
    callback(
        9,
        "Fetch outlets status",
        "Outlets",
        arguments="request: none; reply/push: [outlet1 0|1, outlet2 0|1] or [x, [o1, o2]]",
        check=_check_outlets,
        fields=_outlets_fields,
        summary=_sum_outlets,
        pushed=True,
    ),
    callback(
        10,
        "Outlet control",
        "Outlet control",
        arguments="request: [outlet 1|2, state 0|1]",
        check=_check_outlet_control,
        fields=_outlet_control_fields,
        summary=_sum_outlet_control,
    ),
    _nightlight_callback(
        14,
        "Nightlight control",
        "Nightlight control",
        arguments="request: [on 0|1, brightness 0-100]",
        check=_check_nightlight_control,
    ),
    _nightlight_callback(
        15,
        "Fetch nightlight",
        "Nightlight",
        arguments="request: none; reply/push: [on 0|1, brightness 0-100]",
        check=_check_nightlight_state,
        pushed=True,
    ),
    _color_callback(
        17,
        "Color light control",
        "Color light control",
        arguments="request: [light, mode 1-7, [leds], speed 0-7?, random 0|1?, level 0-100?]",
        check=_check_color_control,
    ),
    _color_callback(
        18,
        "Fetch color light",
        "Color light",
        arguments="request: [light]; reply/push: as cb17's request, short without an Aura",
        check=_check_color_fetch,
        pushed=True,
    ),
)
