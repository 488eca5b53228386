"""The InvisOutlet callback catalog, the message decoder, and argument meanings.

All protocol knowledge lives here (protocol/README.md sections 2-7), so that the
framer stays byte-level and the analysis only correlates. Decoding is on the hot path
(a million messages must analyse in seconds), so ``decode`` reads the envelope and runs
cheap type and range checks only; everything meant for people (``fields``,
``summary``) is computed on demand when a message is shown. Nothing here rejects a
message: the docs contradict each other (README section 7), so odd shapes are
annotated and shown raw, never refused.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Literal, NamedTuple

import orjson

from proxy.core.events import Side, Transport
from proxy.core.framing import Frame
from proxy.core.model import LAZY, Annotation, Message

__all__ = [
    "CATALOG",
    "FIRE_AND_FORGET",
    "REDACTED",
    "SECRET_KEYS",
    "CallbackSpec",
    "Field",
    "adopt_request",
    "decode",
    "duplicate_keys",
    "fields",
    "firmware_versions",
    "is_fire_and_forget",
    "name_of",
    "ota_device_type",
    "ota_request_target",
    "possible_callbacks",
    "puback_meaning",
    "redact_bytes",
    "redact_url",
    "redact_value",
    "secret_kind",
    "summary",
]

# ---------------------------------------------------------------------------
# The catalog


@dataclass(frozen=True, slots=True)
class CallbackSpec:
    """What the sources say about one callbackName.

    ``fire_and_forget``: a request may go unanswered without anything being wrong
    (5, 6, 7 are never answered; 21's acknowledgement may be missing).
    ``never_answered``: no reply exists at all (the device reboots or leaves).
    ``puback_ok``/``puback_fail``: what PUBACK 1/0 means for this callback (README 7.5).
    """

    number: int
    name: str
    label: str
    app_sends: bool
    outlet_pushes: bool
    push_only: bool = False
    fire_and_forget: bool = False
    never_answered: bool = False
    puback_ok: str = "processed"
    puback_fail: str = "failed"


def _spec(
    number: int,
    name: str,
    label: str,
    *,
    pushed: bool = False,
    push_only: bool = False,
    ff: bool = False,
    never: bool = False,
    ok: str = "processed",
    fail: str = "failed",
) -> CallbackSpec:
    return CallbackSpec(
        number=number,
        name=name,
        label=label,
        app_sends=not push_only,
        outlet_pushes=pushed or push_only,
        push_only=push_only,
        fire_and_forget=ff or never,
        never_answered=never,
        puback_ok=ok,
        puback_fail=fail,
    )


CATALOG: Final[dict[int, CallbackSpec]] = {
    s.number: s
    for s in (
        _spec(1, "Request device configuration", "Config"),
        _spec(2, "Configure device configuration", "Set config"),
        _spec(3, "Request accessory names", "Names"),
        _spec(4, "Configure accessory names", "Set names"),
        _spec(5, "Restart InvisOutlet", "Restart outlet", never=True),
        _spec(6, "Reset network settings", "Network reset", never=True),
        _spec(7, "Factory reset", "Factory reset", never=True),
        _spec(9, "Fetch outlets status", "Outlets", pushed=True),
        _spec(10, "Outlet control", "Outlet control"),
        _spec(11, "Fetch sensors", "Sensors", pushed=True),
        _spec(12, "Get device information", "Device info", pushed=True),
        _spec(14, "Nightlight control", "Nightlight control"),
        _spec(15, "Fetch nightlight", "Nightlight", pushed=True),
        _spec(17, "Color light control", "Color light control"),
        _spec(18, "Fetch color light", "Color light", pushed=True),
        _spec(20, "Request available updates", "Updates"),
        _spec(
            21,
            "Perform OTA update",
            "OTA update",
            pushed=True,
            ff=True,
            ok="will update",
            fail="could not start the update",
        ),
        _spec(22, "OTA download progress", "OTA progress", push_only=True),
        _spec(23, "OTA result", "OTA result", push_only=True),
        _spec(24, "Restart InvisDeco", "Restart deco"),
        _spec(25, "Reset InvisDeco", "Reset deco"),
        _spec(
            26,
            "Occupancy sensor calibration",
            "Occupancy calibration",
            ok="accepted, starts in 10 s",
            fail="timed out reaching the sensor",
        ),
        _spec(
            27,
            "MQTT status / Home Assistant discovery",
            "MQTT/HA",
            ok="broker connected",
            fail="not connected",
        ),
        _spec(28, "Temperature/RH calibration", "Temp/RH calibration"),
    )
}

FIRE_AND_FORGET: Final[frozenset[int]] = frozenset(
    n for n, s in CATALOG.items() if s.fire_and_forget
)

# cb27's PUBACK depends on the request's sub-command (README section 3).
_CB27_PUBACK: Final = {
    0: ("broker connected", "not connected"),
    1: ("sent", "not sent or broker down"),
    2: ("sent", "not sent or broker down"),
}
_CB27_EITHER: Final = (
    "broker connected (sub 0) or sent (sub 1, 2)",
    "not connected (sub 0) or not sent (sub 1, 2)",
)


def name_of(callback: int | None) -> str:
    """The callback's name; "" for None (a pure ack before correlation)."""
    if callback is None:
        return ""
    spec = CATALOG.get(callback)
    return spec.name if spec is not None else f"unknown callback {callback}"


def is_fire_and_forget(cb: int | None) -> bool:
    """Whether a request of this callback may rightly go unanswered."""
    return cb in FIRE_AND_FORGET


def puback_meaning(callback: int | None, puback: Any, request_args: Any = None) -> str:
    """What a PUBACK value means for this callback (README 7.5).

    ``request_args`` refines it where the request matters (cb27's sub-command).
    """
    if type(puback) is not int or puback not in (0, 1):
        return f"not 0 or 1: {_json(puback)}"
    spec = CATALOG.get(callback) if callback is not None else None
    if callback == 27:
        sub = _first(request_args)
        if type(sub) is int and sub in _CB27_PUBACK:
            return _CB27_PUBACK[sub][1 - puback]
        if request_args is None:  # the sub-command is unknown: say both
            return _CB27_EITHER[1 - puback]
    if spec is None:
        return "processed" if puback == 1 else "failed"
    return spec.puback_ok if puback == 1 else spec.puback_fail


# ---------------------------------------------------------------------------
# Small helpers (no exceptions on any JSON value)


_dumps: Final = orjson.dumps
_DumpError: Final = orjson.JSONEncodeError
_encode: Final = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def _json(value: Any, limit: int = 0) -> str:
    text: str = _encode(value)
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


# ---------------------------------------------------------------------------
# Secrets (shared by the `secret` annotation and redaction)

REDACTED: Final = "<redacted>"
# Greedy to the last '@': a password may hold one (``mqtt://bob:pw@x@broker``), and
# cutting at the first would leave the rest of it in place.
_URL_CREDENTIALS: Final = re.compile(r"^((?:[A-Za-z][A-Za-z0-9+.\-]*://)?)(.+)@", re.DOTALL)
_URL_SCHEME: Final = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")
# Keys whose value is a credential wherever they appear, and those that are one in an
# MQTT object (the account name). Compared in lower case.
SECRET_KEYS: Final = frozenset({"pass", "password", "passwd", "psk"})
MQTT_ACCOUNT_KEYS: Final = frozenset({"user", "username"})
URL_KEYS: Final = frozenset({"mqtt_broker_url"})

SecretKind = Literal["value", "url"]


def secret_kind(key: str, value: Any, in_mqtt: bool) -> SecretKind | None:
    """Whether ``key: value`` holds a credential: "value" (the whole value, of any
    JSON type), "url" (the user:password part of a URL), or None.

    One rule for the annotation, the detail pane's masking and redaction, so they
    cannot disagree. Empty values and ones already redacted are not secrets.
    """
    if value is None or value == "" or value == REDACTED:
        return None
    low = key.lower()
    if low in SECRET_KEYS or (in_mqtt and low in MQTT_ACCOUNT_KEYS):
        return "value"
    if type(value) is str and "@" in value and (low in URL_KEYS or _URL_SCHEME.match(value)):
        m = _URL_CREDENTIALS.match(value)
        if m is not None and m.group(2) != REDACTED:
            return "url"
    return None


def _config_objects(args: Any) -> list[tuple[str, dict[str, Any]]]:
    """The config objects in cb1/cb2 args: an object, or objects inside a list."""
    if type(args) is dict:
        return [("", args)]
    if type(args) is list:
        return [(f"[{i}].", a) for i, a in enumerate(args) if type(a) is dict]
    return []


def _mqtt_secrets(args: Any) -> list[tuple[dict[str, Any], str, str, str]]:
    """Every credential in config args: (mqtt dict, key, path, kind).

    ``kind`` is "value" for user/pass and "url" for credentials in the broker URL.
    """
    found: list[tuple[dict[str, Any], str, str, str]] = []
    for prefix, obj in _config_objects(args):
        sys_prefs = obj.get("sys_prefs")
        if type(sys_prefs) is not dict:
            continue
        mqtt = sys_prefs.get("mqtt")
        if type(mqtt) is not dict:
            continue
        for key, value in mqtt.items():
            kind = secret_kind(key, value, True)
            if kind is not None:
                found.append((mqtt, key, f"{prefix}sys_prefs.mqtt.{key}", kind))
    return found


def redact_url(url: str) -> str:
    """``url`` with everything before its last '@' (after the scheme) replaced."""
    return _URL_CREDENTIALS.sub(lambda m: f"{m.group(1)}{REDACTED}@", url, count=1)


def redact_value(obj: Any) -> tuple[Any, list[str]]:
    """A copy of a decoded message with MQTT credentials replaced by ``REDACTED``.

    Looks wherever a config object can carry them (cb1 replies, cb2 requests, and
    any other callback that happens to carry ``sys_prefs.mqtt``), and says what it
    removed ("cb2 sys_prefs.mqtt.pass"). The input is never modified.
    """
    if type(obj) is not dict:
        return obj, []
    payload = obj.get("payload")
    if type(payload) is not dict:
        return obj, []
    args = payload.get("callbackArgs")
    if not _mqtt_secrets(args):
        return obj, []
    args_copy = json.loads(json.dumps(args))  # a deep copy of a JSON value
    cbn = payload.get("callbackName")
    where = f"cb{cbn}" if type(cbn) is int else f"callback {_json(cbn, 20)}"
    removed: list[str] = []
    for mqtt, key, path, kind in _mqtt_secrets(args_copy):
        if kind == "url":
            mqtt[key] = redact_url(mqtt[key])
            removed.append(f"{where} {path} (credentials in the URL)")
        else:
            mqtt[key] = REDACTED
            removed.append(f"{where} {path}")
    out = dict(obj)
    out["payload"] = {**payload, "callbackArgs": args_copy}
    return out, removed


def redact_bytes(raw: bytes) -> tuple[bytes, list[str]]:
    """``redact_value`` on a frame's bytes, re-serialised compactly.

    Returns ``raw`` itself when it is not JSON or holds nothing to redact, so that
    untouched frames stay byte-identical. Whitespace around the value is kept (a TCP
    frame's trailing newline survives).
    """
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return raw, []
    redacted, removed = redact_value(value)
    if not removed:
        return raw, []
    body = raw.strip()
    start = raw.find(body[:1]) if body else 0
    lead, trail = raw[:start], raw[start + len(body) :]
    text = json.dumps(redacted, ensure_ascii=False, separators=(",", ":"))
    return lead + text.encode("utf-8") + trail, removed


# ---------------------------------------------------------------------------
# Decoding


def _invalid(frame: Frame, msg_id: int, transport: Transport, text: str) -> Message:
    return Message(
        msg_id,
        frame.t,
        frame.conn,
        transport,
        frame.side,
        "invalid",
        None,
        "invalid",
        None,
        None,
        None,
        None,
        frame.raw,
        [Annotation("invalid-json", "error", text)],
        frame.injected,
    )


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


# Per-callback argument checks: (msg, side, args) -> None, annotating `bad-args`.
_Check = Callable[[Message, Side, Any], None]


def _bad(msg: Message, text: str) -> None:
    msg.annotations.append(Annotation("bad-args", "warning", text))


def _no_args(msg: Message, side: Side, args: Any) -> None:
    if side == "app" and args is not None and args != [] and args != {}:
        _bad(msg, f"cb{msg.callback} takes no arguments, got {_json(args, 60)}")


def _check_config_reply(msg: Message, side: Side, args: Any) -> None:
    if side == "app":
        _no_args(msg, side, args)
    elif args is not None and type(args) is not dict:
        _bad(msg, f"device configuration should be an object, got {_json(args, 60)}")


def _check_config_set(msg: Message, side: Side, args: Any) -> None:
    if side != "app":
        return
    if type(args) is dict:
        return
    if type(args) is list and len(args) == 1 and type(args[0]) is dict:
        return
    _bad(msg, f"expected a config object or a one-element list of one, got {_json(args, 60)}")


def _check_names_reply(msg: Message, side: Side, args: Any) -> None:
    if side == "app":
        _no_args(msg, side, args)
        return
    if args is None:
        return
    if type(args) is dict:
        args = args.get("payload")
    if type(args) is not list:
        _bad(msg, "expected a list of {accessory, name} (bare or wrapped in {payload: [...]})")


def _check_names_set(msg: Message, side: Side, args: Any) -> None:
    if side != "app":
        return
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


def _check_outlets(msg: Message, side: Side, args: Any) -> None:
    if side == "app":
        _no_args(msg, side, args)
        return
    if args is None:
        return
    pair = _outlet_pair(args)
    if pair is None or not (_int_in(pair[1], 0, 1) and _int_in(pair[2], 0, 1)):
        _bad(msg, f"expected [outlet1, outlet2] of 0/1 (or [x, [o1, o2]]), got {_json(args, 60)}")


def _check_outlet_control(msg: Message, side: Side, args: Any) -> None:
    if side != "app":
        return
    if type(args) is not list or len(args) != 2:
        _bad(msg, f"expected [outlet 1|2, state 0|1], got {_json(args, 60)}")
        return
    if not _int_in(args[0], 1, 2):
        _bad(msg, f"outlet {_json(args[0], 20)} should be 1 or 2")
    if not _int_in(args[1], 0, 1):
        _bad(msg, f"state {_json(args[1], 20)} should be 0 or 1")


def _check_sensors(msg: Message, side: Side, args: Any) -> None:
    if side == "app":
        _no_args(msg, side, args)
        return
    if args is None:
        return
    if type(args) is not list or len(args) != 2 or type(args[1]) is not dict:
        _bad(msg, f"expected [deco_type, {{readings}}], got {_json(args, 60)}")


def _check_device_info(msg: Message, side: Side, args: Any) -> None:
    if side == "app":
        _no_args(msg, side, args)
        return
    if args is None:
        return
    if type(args) is not dict or type(args.get("IM")) is not dict:
        _bad(msg, f"expected {{IM: {{...}}, PM?: {{...}}}}, got {_json(args, 60)}")
    elif "PM" in args and type(args["PM"]) is not dict:
        _bad(msg, f"PM should be an object, got {_json(args['PM'], 40)}")


def _check_on_brightness(msg: Message, side: Side, args: Any) -> None:
    # cb14 request and cb15 reply/push share [on 0|1, brightness 0-100].
    if side == "app" and msg.callback == 15:
        _no_args(msg, side, args)
        return
    if side != "app" and (msg.callback == 14 or args is None):
        return
    if type(args) is not list or len(args) != 2:
        _bad(msg, f"expected [on 0|1, brightness 0-100], got {_json(args, 60)}")
        return
    if not _int_in(args[0], 0, 1):
        _bad(msg, f"on {_json(args[0], 20)} should be 0 or 1")
    if not _num_in(args[1], 0, 100):
        _bad(msg, f"brightness {_json(args[1], 20)} outside 0-100")


def _check_color(msg: Message, side: Side, args: Any) -> None:
    if side == "app" and msg.callback == 18:
        if type(args) is not list or len(args) != 1 or type(args[0]) is not int:
            _bad(msg, f"expected [light], got {_json(args, 60)}")
        return
    if side != "app" and (msg.callback == 17 or args is None):
        return
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


def _check_updates(msg: Message, side: Side, args: Any) -> None:
    if side == "app":
        _no_args(msg, side, args)
    elif args is not None and type(args) is not dict:
        _bad(msg, f"expected {{IM: {{...}}, PM: {{...}}}}, got {_json(args, 60)}")


def _check_ota_request(msg: Message, side: Side, args: Any) -> None:
    if type(args) is not list or len(args) != 2:
        what = "[target 1|2, method 0|1]" if side == "app" else "[device, status 1|0]"
        _bad(msg, f"expected {what}, got {_json(args, 60)}")
        return
    a, b = args
    if side == "app":
        if not _int_in(a, 1, 2):
            hint = " (0 was the 0-based target of early library versions)" if a == 0 else ""
            _bad(msg, f"target {_json(a, 20)} should be 1 (outlet) or 2 (deco){hint}")
        if not _int_in(b, 0, 1):
            _bad(msg, f"method {_json(b, 20)} should be 0 (deco Wi-Fi) or 1 (via outlet)")
    else:
        if not _int_in(a, 1, 3):
            _bad(msg, f"device {_json(a, 20)} should be 1, 2 or 3")
        if not _int_in(b, 0, 1):
            _bad(msg, f"status {_json(b, 20)} should be 1 (continues) or 0 (failed)")


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
    dt, value = args[0], args[1]
    if not _int_in(dt, 1, 3):
        _bad(msg, f"device_type {_json(dt, 20)} should be 1, 2 or 3")
    if msg.callback == 22:
        if not _num_in(value, 0, 100):
            _bad(msg, f"percent {_json(value, 20)} outside 0-100")
    elif not _int_in(value, 0, 1):
        _bad(msg, f"status {_json(value, 20)} should be 1 (success) or 0 (failure)")


def _check_calibration(msg: Message, side: Side, args: Any) -> None:
    if side != "app":
        return
    if type(args) is not list or len(args) != 1 or not _num_in(args[0], 1, 86400):
        _bad(msg, f"expected [seconds] (30-60 advised), got {_json(args, 60)}")


def _check_mqtt(msg: Message, side: Side, args: Any) -> None:
    if side != "app":
        return
    if type(args) is not list or len(args) != 1 or not _int_in(args[0], 0, 2):
        _bad(msg, f"expected [sub 0|1|2], got {_json(args, 60)}")


def _check_temp_rh(msg: Message, side: Side, args: Any) -> None:
    if side != "app":
        return
    if type(args) is not list or len(args) != 2 or not all(_is_num(a) for a in args):
        _bad(msg, f"expected [temp m°C, RH milli-%], got {_json(args, 60)}")
    elif not -40000 <= args[0] <= 125000 or not 0 <= args[1] <= 100000:
        _bad(msg, f"{_json(args, 40)} outside -40..125 °C / 0..100 % RH (milli-units)")


_CHECKS: Final[dict[int, _Check]] = {
    1: _check_config_reply,
    2: _check_config_set,
    3: _check_names_reply,
    4: _check_names_set,
    5: _no_args,
    6: _no_args,
    7: _no_args,
    9: _check_outlets,
    10: _check_outlet_control,
    11: _check_sensors,
    12: _check_device_info,
    14: _check_on_brightness,
    15: _check_on_brightness,
    17: _check_color,
    18: _check_color,
    20: _check_updates,
    21: _check_ota_request,
    22: _check_ota_push,
    23: _check_ota_push,
    24: _no_args,
    25: _no_args,
    26: _check_calibration,
    27: _check_mqtt,
    28: _check_temp_rh,
}

_FIRE_AND_FORGET_TEXT: Final = {
    5: "the device reboots; no reply is expected",
    6: "the device leaves the network; no reply is expected",
    7: "the device resets and reboots; no reply is expected",
}
# cb21 is fire-and-forget too, but whether its ack is missing, and what that means for
# the target and the outlet's revision, only the analysis can tell (Analysis._ota_no_ack).


# Arguments the analysis reads while correlating (or that hold secrets) stay decoded;
# the rest (sensor pushes above all) are parsed again from ``raw`` when shown.
_EAGER_ARGS: Final = frozenset({1, 2, 12, 20, 21, 22, 23})


# Duplicate keys. JSON parsers disagree on which value of a repeated key wins (Python's
# json and orjson keep the last; the firmware's parser is unknown), so a frame with
# one may mean something else to the outlet than it shows here.


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


def decode(frame: Frame, msg_id: int, transport: Transport) -> Message:
    """Decode one frame into a Message, with the annotations the frame alone justifies.

    ``kind`` is provisional (app: request, outlet: push); the analysis settles
    responses and fills a pure ack's callback from the request it answers.
    """
    if frame.error is not None:
        why = frame.error
        return _invalid(
            frame,
            msg_id,
            transport,
            why if why.startswith(("not JSON", "not decoded")) else f"not JSON: {why}",
        )
    value = frame.value
    if type(value) is not dict:
        return _invalid(frame, msg_id, transport, f"not a JSON object: {_json(value, 80)}")
    side = frame.side
    pid = value.get("packetID")
    puback = value.get("PUBACK")
    payload = value.get("payload")
    if type(payload) is dict:
        raw_cb = payload.get("callbackName")
        args = payload.get("callbackArgs")
    else:
        raw_cb = args = None
    app = side == "app"
    spec: CallbackSpec | None
    if type(raw_cb) is int:
        callback: int | None = raw_cb
        spec = CATALOG.get(raw_cb)
        name = spec.name if spec is not None else name_of(raw_cb)
    else:
        callback, spec, name = None, None, ""
    msg = Message(
        msg_id,
        frame.t,
        frame.conn,
        transport,
        side,
        "request" if app else "push",
        callback,
        name,
        pid,
        value.get("sn"),
        puback,
        args if callback in _EAGER_ARGS or callback is None else LAZY,
        frame.raw,
        [],
        frame.injected,
    )
    if callback is None:
        if raw_cb is not None or payload is not None or app:
            _decode_odd_callback(msg, payload, raw_cb)
            callback = msg.callback
            spec = CATALOG.get(callback) if callback is not None else None
    elif spec is None:
        msg.annotations.append(
            Annotation("unknown-callback", "warning", f"no source documents callback {callback}")
        )
    if app:
        if type(pid) is not int or not 100000 <= pid <= 999999:
            _packet_id_request(msg, pid)
    else:
        if pid is not None and type(pid) is not int:
            msg.annotations.append(
                Annotation(
                    "packetid-format",
                    "warning",
                    f"packetID should be an integer, got {type(pid).__name__} {_json(pid, 30)}",
                )
            )
        if puback is not None and (puback != 1 or type(puback) is not int):
            _puback_annotation(msg, callback, puback)
    if spec is not None:
        check = _CHECKS.get(spec.number)
        if check is not None:
            check(msg, side, args)
        if app:
            if spec.push_only:
                msg.annotations.append(
                    Annotation(
                        "unexpected-direction",
                        "warning",
                        f"cb{spec.number} ({spec.label}) is pushed by the outlet, never sent "
                        "by an app",
                    )
                )
            elif spec.number in _FIRE_AND_FORGET_TEXT:
                msg.annotations.append(
                    Annotation("fire-and-forget", "info", _FIRE_AND_FORGET_TEXT[spec.number])
                )
        elif spec.never_answered:
            msg.annotations.append(
                Annotation(
                    "unexpected-direction",
                    "warning",
                    f"the outlet sent cb{spec.number} ({spec.label}), which it never answers",
                )
            )
        if spec.number <= 2:
            _secret_annotation(msg, args)
    if _may_repeat_keys(frame.raw, value):
        _duplicate_annotation(msg, frame.raw)
    return msg


def _decode_odd_callback(msg: Message, payload: Any, raw_cb: Any) -> None:
    """The slow path: no payload, no callbackName, or one that is not an int."""
    app = msg.side == "app"
    if payload is None:
        if app:
            msg.annotate("missing-callback", "warning", "request without payload.callbackName")
        return  # from the outlet: a pure acknowledgement {sn, packetID, PUBACK}
    if type(payload) is not dict:
        msg.annotate(
            "missing-callback", "warning", f"payload is not an object: {_json(payload, 60)}"
        )
        return
    if raw_cb is None:
        msg.annotate("missing-callback", "warning", "payload without callbackName")
        return
    number = _int_like(raw_cb)
    if number is None:
        msg.annotate(
            "missing-callback",
            "warning",
            f"callbackName is not a number: {_json(raw_cb, 40)}",
        )
        return
    msg.callback = number
    msg.name = name_of(number)
    msg.annotate(
        "callback-format",
        "warning",
        f"callbackName {_json(raw_cb, 40)} is a {type(raw_cb).__name__}, not an integer; "
        f"read as {number}",
    )
    if number not in CATALOG:
        msg.annotate("unknown-callback", "warning", f"no source documents callback {number}")


def adopt_request(reply: Message, request: Message) -> None:
    """Settle a reply once the analysis knows which request it answers.

    A pure ack carries no callbackName, so it takes the request's; and its
    ``puback-failure`` text, written before the callback was known, gets the
    callback's own meaning (cb27's depends on the request's sub-command).
    """
    if reply.callback is None:
        reply.callback = request.callback
        reply.name = request.name
    for i, note in enumerate(reply.annotations):
        if note.code == "puback-failure":
            text = _puback_failure_text(reply.callback, request.args)
            reply.annotations[i] = Annotation(note.code, note.severity, text)


def _puback_failure_text(callback: int | None, request_args: Any = None) -> str:
    text = f"PUBACK 0: {puback_meaning(callback, 0, request_args)}"
    if callback == 21:
        text += "; the request was refused"
    return text


def _packet_id_request(msg: Message, pid: Any) -> None:
    if pid is None:
        text = "request without packetID"
    elif type(pid) is not int:
        text = f"packetID should be an integer, got {type(pid).__name__} {_json(pid, 30)}"
    else:
        text = f"packetID {pid} is not six digits without a leading zero (100000-999999)"
    msg.annotations.append(Annotation("packetid-format", "warning", text))


def _puback_annotation(msg: Message, callback: int | None, puback: Any) -> None:
    if type(puback) is int and puback == 0:
        msg.annotations.append(
            Annotation("puback-failure", "warning", _puback_failure_text(callback))
        )
    else:
        msg.annotations.append(
            Annotation("puback-format", "warning", f"PUBACK should be 0 or 1, got {_json(puback)}")
        )


def _secret_annotation(msg: Message, args: Any) -> None:
    secrets = _mqtt_secrets(args)
    if secrets:
        paths = ", ".join(path for _, _, path, _ in secrets)
        msg.annotations.append(
            Annotation(
                "secret",
                "info",
                f"carries MQTT credentials ({paths}); redact before sharing (export --redact)",
            )
        )


# ---------------------------------------------------------------------------
# Helpers for the correlator


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
# Meanings for people


class Field(NamedTuple):
    """One named value and what it means, ready to show."""

    name: str
    value: str
    meaning: str


_FieldsFn = Callable[[Message, Any], list[Field]]

_ACCESSORIES: Final = {1: "top outlet", 2: "bottom outlet", 3: "nightlight"}
_DEVICE_TYPES: Final = {1: "InvisOutlet", 2: "InvisDeco", 3: "InvisOutlet WWW (web UI) partition"}
_DEVICE_SHORT: Final = {1: "outlet", 2: "deco", 3: "outlet WWW partition"}
_TARGETS: Final = {1: "InvisOutlet", 2: "InvisDeco"}
_METHODS: Final = {
    0: "deco downloads over its own Wi-Fi",
    1: "deco is updated through the InvisOutlet",
}
_METHOD_SHORT: Final = {0: "Wi-Fi", 1: "via outlet"}
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
_MQTT_SUBS: Final = {
    0: "check MQTT status",
    1: "clear Home Assistant discovery payload",
    2: "send Home Assistant discovery payload",
}
_ON_OFF: Final = {0: "off", 1: "on"}

# cb11 readings: key -> (unit appended to the value, meaning)
_READINGS: Final[dict[str, tuple[str, str]]] = {
    "temp_celsius": (" °C", "temperature"),
    "humidity": (" %", "relative humidity"),
    "BME680_temp_celsius": (" °C", "raw BME680 temperature (development use only)"),
    "BME680_humidity": (" %", "raw BME680 humidity (development use only)"),
    "AQI": ("", "air quality index"),
    "AQI_accuracy": ("", "AQI accuracy: 3 best … 0 calibrating"),
    "pressure": (" Pa", "air pressure"),
    "gas": (" Ω", "gas sensor resistance"),
    "co2_equiv": (" ppm", "CO₂ equivalent"),
    "co2_peak_lvl": (" ppm", "CO₂ peak level"),
    "co2_accuracy": ("", "CO₂ accuracy: 3 best … 0 calibrating"),
    "bvoc_equiv": (" ppm", "breath-VOC equivalent"),
    "bvoc_accuracy": ("", "bVOC accuracy: 3 best … 0 calibrating"),
    "temphumidity_accuracy": ("", "temperature/RH accuracy (undocumented)"),
    "lux": (" lx", "illuminance"),
    "distance": (" mm", "radar distance (unit undocumented; mm assumed)"),
    "occupancy_state": ("", "occupancy state (4/5/6: calibration in progress)"),
    "movement_energy": ("", "radar movement energy"),
    "stationary_energy": ("", "radar stationary energy"),
}

# cb1/cb2 config keys (last path component) -> meaning
_CONFIG_KEYS: Final = {
    "outletPwrIndicatorOn": "outlet power indicator (0/1)",
    "pmIndicatorBrightness": "deco indicator brightness (1-100)",
    "capacitiveCtrl": "capacitive touch control",
    "aqiColorRGBFeature": "air-quality colour on the light",
    "motionAwayFeature": "motion away feature",
    "adaptiveNightlightFeature": "adaptive nightlight",
    "adaptiveMinBrightness": "adaptive nightlight minimum brightness",
    "adaptiveMaxBrightness": "adaptive nightlight maximum brightness",
    "occupancyNightlightFeature": "nightlight on occupancy",
    "overrideAdaptiveOccupancyNightlightFeature": "occupancy overrides adaptive nightlight",
    "magicTouchCtrl": "magic touch control",
    "enabled": "enabled (0/1)",
    "mqtt_broker_url": "MQTT broker URL",
    "qos": "MQTT quality of service",
    "ip": "IP address",
    "mainDNS": "primary DNS server",
    "backupDNS": "backup DNS server",
}


def _raw_fields(name: str, value: Any, meaning: str = "not decoded; shown raw") -> list[Field]:
    return [Field(name, _json(value), meaning)]


def _named(table: dict[int, str], v: Any, default: str | None = None) -> str:
    """The table's word for ``v``, else ``default``, else why there is none."""
    if type(v) is int and v in table:
        return table[v]
    if default is not None:
        return default
    return "unknown value" if type(v) is int else "not an integer"


def _flatten(
    prefix: str, value: Any, out: list[Field], depth: int = 0
) -> None:  # cb1/cb2/cb12 objects
    if type(value) is dict and value and depth < 6:
        for key, sub in value.items():
            _flatten(f"{prefix}.{key}" if prefix else str(key), sub, out, depth + 1)
        return
    last = prefix.rsplit(".", 1)[-1]
    out.append(Field(prefix or "(value)", _json(value, 200), _CONFIG_KEYS.get(last, "")))


def _config_fields(msg: Message, args: Any) -> list[Field]:
    if args is None:
        return []
    objs = _config_objects(args)
    if not objs or (type(args) is list and len(objs) != len(args)):
        return _raw_fields("callbackArgs", args, "expected a config object; shown raw")
    out: list[Field] = []
    if type(args) is list:
        form = "one-element list (the library's form)" if len(args) == 1 else "list of objects"
        out.append(Field("form", f"[{len(args)} object(s)]", form))
    for prefix, obj in objs:
        _flatten(prefix.rstrip("."), obj, out)
    # Mask credentials: these fields are what people screenshot; the raw view keeps them.
    secret_paths = {path: kind for *_, path, kind in _mqtt_secrets(args)}
    masked: list[Field] = []
    for f in out:
        kind = secret_paths.get(f.name)
        if kind == "value":
            masked.append(Field(f.name, REDACTED, "secret: MQTT credential (see the raw view)"))
        elif kind == "url":
            url = json.loads(f.value)
            masked.append(
                Field(f.name, redact_url(url), "MQTT broker URL; credentials hidden (raw view)")
            )
        else:
            masked.append(f)
    return masked


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


def _outlet_control_fields(msg: Message, args: Any) -> list[Field]:
    if type(args) is not list or len(args) != 2:
        return [] if args is None else _raw_fields("callbackArgs", args)
    return [
        Field("outlet", _num(args[0]), _named(_ACCESSORIES, args[0])),
        Field("state", _num(args[1]), _named(_ON_OFF, args[1])),
    ]


def _valid_text(v: Any) -> str:
    if v is True or v == 1:
        return "valid"
    if v is False or v == 0:
        return "not valid"
    return "unexpected value"


def _reading(key: str, v: Any) -> Field:
    if key.endswith("_valid"):
        return Field(key, _json(v, 40), _valid_text(v))
    unit, meaning = _READINGS.get(key, ("", ""))
    if _is_num(v):
        return Field(key, f"{_num(v)}{unit}", meaning)
    if type(v) is str:
        return Field(key, v + unit, meaning + (" (a string)" if meaning else "(a string)"))
    return Field(key, _json(v, 60), meaning)


def _sensors_fields(msg: Message, args: Any) -> list[Field]:
    if args is None:
        return []
    if type(args) is not list or len(args) != 2 or type(args[1]) is not dict:
        return _raw_fields("callbackArgs", args)
    out = [Field("deco_type", _json(args[0], 40), "InvisDeco device type (internal use)")]
    out.extend(_reading(str(k), v) for k, v in args[1].items())
    return out


def _device_info_fields(msg: Message, args: Any) -> list[Field]:
    if args is None:
        return []
    if type(args) is not dict:
        return _raw_fields("callbackArgs", args)
    out: list[Field] = []
    for key, block in args.items():
        if key not in ("IM", "PM") or type(block) is not dict:
            out.extend(_raw_fields(str(key), block, ""))
            continue
        module = "InvisOutlet module" if key == "IM" else "InvisDeco faceplate"
        for sub, v in block.items():
            name = f"{key}.{sub}"
            if sub == "radar" and type(v) is dict:
                for rk, rv in v.items():
                    meaning = {
                        "fw_rev": "radar firmware",
                        "fw_ver": "radar firmware (library's key; docs say fw_rev)",
                        "hw_type": "radar hardware type",
                        "MAC": "radar MAC address",
                    }.get(str(rk), "")
                    out.append(Field(f"{name}.{rk}", _plain(rv), meaning))
            elif sub == "fw_rev":
                meaning = f"{module} firmware"
                if type(v) is str and not v.strip():
                    meaning += "; blank: needs restart"
                out.append(Field(name, _plain(v), meaning))
            elif sub == "device":
                degraded = v in ("", "Unknown")
                out.append(Field(name, _plain(v), "degraded module" if degraded else "model"))
            else:
                meaning = {
                    "sn": "serial number",
                    "MAC": "MAC address",
                    "hw_rev": "hardware revision (undocumented)",
                    "online": "faceplate online",
                    "type": "faceplate type",
                }.get(str(sub), "")
                out.append(Field(name, _plain(v), meaning))
    if "PM" not in args:
        out.append(Field("PM", "absent", "no faceplate, or the deco is offline or rebooting"))
    return out


def _plain(v: Any) -> str:
    return v if type(v) is str else _json(v, 100)


def _on_brightness_fields(msg: Message, args: Any) -> list[Field]:
    if type(args) is not list or len(args) != 2:
        return [] if args is None or args == [] else _raw_fields("callbackArgs", args)
    on, bri = args
    return [
        Field("on", _num(on), _named(_ON_OFF, on)),
        Field("brightness", _num(bri), f"{_num(bri)} %" if _is_num(bri) else "not a number"),
    ]


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


def _updates_fields(msg: Message, args: Any) -> list[Field]:
    if args is None:
        return []
    if type(args) is not dict:
        return _raw_fields("callbackArgs", args)
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
    for key, block in args.items():
        if key not in known or type(block) is not dict:
            out.extend(_raw_fields(str(key), block, ""))
            continue
        for sub, v in block.items():
            if sub not in known[key]:
                out.extend(_raw_fields(f"{key}.{sub}", v, ""))
    return out


def _ota_request_fields(msg: Message, args: Any) -> list[Field]:
    if type(args) is not list or len(args) < 2:
        return [] if args is None else _raw_fields("callbackArgs", args)
    a, b = args[0], args[1]
    if msg.side == "app":
        method = _named(_METHODS, b)
        if a == 1 and type(b) is int and b in _METHODS:
            method += " (the outlet ignores it)"
        out = [
            Field("target", _json(a, 40), _named(_TARGETS, a)),
            Field("method", _json(b, 40), method),
        ]
    else:
        status = {1: "the update continues", 0: "failed"}
        out = [
            Field("device", _json(a, 40), _named(_DEVICE_TYPES, a)),
            Field("status", _json(b, 40), _named(status, b)),
        ]
    if len(args) > 2:
        out.extend(_raw_fields("extra", args[2:], "unexpected trailing values"))
    return out


def _ota_push_fields(msg: Message, args: Any) -> list[Field]:
    if type(args) is not list or len(args) < 2:
        return [] if args is None else _raw_fields("callbackArgs", args)
    dt, value = args[0], args[1]
    out = [Field("device_type", _json(dt, 40), _named(_DEVICE_TYPES, dt))]
    if msg.callback == 22:
        pct = f"{_num(value)} %" if _is_num(value) else "not a number"
        out.append(Field("percent", _json(value, 40), pct))
    else:
        out.append(Field("status", _json(value, 40), _result_text(dt, value)))
    if len(args) > 2:
        out.extend(_raw_fields("extra", args[2:], "unexpected trailing values (ignored)"))
    return out


def _result_text(dt: Any, status: Any) -> str:
    if status == 1 and type(status) is int:
        if dt == 3:
            return "WWW partition done; the main phase follows"
        return "succeeded; the device reboots now"
    if status == 0 and type(status) is int:
        return "failed"
    return "unknown status"


def _calibration_fields(msg: Message, args: Any) -> list[Field]:
    if type(args) is not list or len(args) != 1:
        return [] if args is None else _raw_fields("callbackArgs", args)
    return [
        Field("seconds", _json(args[0], 40), "calibration time (30 recommended, 30-60 advised)")
    ]


def _mqtt_fields(msg: Message, args: Any) -> list[Field]:
    if type(args) is not list or len(args) != 1:
        return [] if args is None else _raw_fields("callbackArgs", args)
    return [Field("sub", _json(args[0], 40), _named(_MQTT_SUBS, args[0]))]


def _milli(v: Any, unit: str) -> str:
    if type(v) is int and abs(v) > 10**15:
        return f"{v}e-3 {unit}"  # beyond float range for huge ints
    return f"{_num(v / 1000)} {unit}" if _is_num(v) else "not a number"


def _temp_rh_fields(msg: Message, args: Any) -> list[Field]:
    if type(args) is not list or len(args) != 2:
        return [] if args is None else _raw_fields("callbackArgs", args)
    return [
        Field("temperature", _json(args[0], 40), _milli(args[0], "°C")),
        Field("humidity", _json(args[1], 40), _milli(args[1], "% RH")),
    ]


def _no_fields(msg: Message, args: Any) -> list[Field]:
    return [] if args is None else _raw_fields("callbackArgs", args, "unexpected arguments")


_FIELDS: Final[dict[int, _FieldsFn]] = {
    1: _config_fields,
    2: _config_fields,
    3: _names_fields,
    4: _names_fields,
    5: _no_fields,
    6: _no_fields,
    7: _no_fields,
    9: _outlets_fields,
    10: _outlet_control_fields,
    11: _sensors_fields,
    12: _device_info_fields,
    14: _on_brightness_fields,
    15: _on_brightness_fields,
    17: _color_fields,
    18: _color_fields,
    20: _updates_fields,
    21: _ota_request_fields,
    22: _ota_push_fields,
    23: _ota_push_fields,
    24: _no_fields,
    25: _no_fields,
    26: _calibration_fields,
    27: _mqtt_fields,
    28: _temp_rh_fields,
}


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
    fn = _FIELDS.get(msg.callback)
    if fn is None:
        if msg.args is not None:
            out.extend(_raw_fields("callbackArgs", msg.args, "unknown callback; shown raw"))
        return out
    out.extend(fn(msg, msg.args))
    return out


# ---------------------------------------------------------------------------
# One-line summaries


def _sum_config(msg: Message, args: Any) -> str | None:
    objs = _config_objects(args)
    if not objs:
        return None
    keys: list[str] = []
    for _, obj in objs:
        for k, v in obj.items():
            if type(v) is dict:
                keys.extend(f"{k}.{sub}" for sub in v)
            else:
                keys.append(str(k))
    return _clip(", ".join(keys), 80) if keys else "(empty)"


def _sum_names(msg: Message, args: Any) -> str | None:
    entries = args.get("payload") if type(args) is dict else args
    if type(entries) is not list:
        return None
    parts = []
    for e in entries:
        if type(e) is dict:
            parts.append(f"{_num(e.get('accessory'))} {_plain(e.get('name'))!r}")
    return ", ".join(parts) if parts else None


def _sum_outlets(msg: Message, args: Any) -> str | None:
    pair = _outlet_pair(args)
    if pair is None:
        return None
    return f"1 {_named(_ON_OFF, pair[1], '?')}, 2 {_named(_ON_OFF, pair[2], '?')}"


def _sum_outlet_control(msg: Message, args: Any) -> str | None:
    if type(args) is not list or len(args) != 2:
        return None
    return f"outlet {_num(args[0])} {_named(_ON_OFF, args[1], '?')}"


def _sum_sensors(msg: Message, args: Any) -> str | None:
    if type(args) is not list or len(args) != 2 or type(args[1]) is not dict:
        return None
    r: dict[str, Any] = args[1]
    parts: list[str] = []
    temp_ok = r.get("temp_valid", 1) not in (0, False)
    if "temp_celsius" in r:
        parts.append(f"{_num(r['temp_celsius'])} °C" if temp_ok else "temp not valid")
    if "humidity" in r and temp_ok:
        parts.append(f"{_num(r['humidity'])} % RH")
    if "AQI" in r:
        aqi_ok = r.get("aqi_valid", 1) not in (0, False)
        parts.append(f"AQI {_num(r['AQI'])}" if aqi_ok else "AQI not valid")
    if "co2_equiv" in r:
        parts.append(f"CO₂ {_num(r['co2_equiv'])} ppm")
    if "lux" in r and r.get("lux_valid", 1) not in (0, False):
        parts.append(f"{_num(r['lux'])} lx")
    if "occupancy_state" in r:
        parts.append(f"occupancy {_num(r['occupancy_state'])}")
    return " ".join(parts) if parts else f"{len(r)} readings"


def _fw_text(block: Any) -> str:
    if type(block) is not dict or "fw_rev" not in block:
        return "fw ?"
    fw = _fw(block, "fw_rev")
    return f"fw {fw}" if fw is not None else "fw blank (needs restart)"


def _sum_device_info(msg: Message, args: Any) -> str | None:
    if type(args) is not dict:
        return None
    parts = [f"IM {_fw_text(args['IM'])}"] if "IM" in args else []
    if "PM" in args:
        pm = args["PM"]
        text = f"PM {_fw_text(pm)}"
        if type(pm) is dict and pm.get("device") in ("", "Unknown"):
            text += " (degraded)"
        parts.append(text)
    else:
        parts.append("no PM (deco absent or rebooting)")
    return ", ".join(parts)


def _sum_on_brightness(msg: Message, args: Any) -> str | None:
    if type(args) is not list or len(args) != 2:
        return None
    return f"{_named(_ON_OFF, args[0], '?')}, {_num(args[1])} %"


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


def _sum_ota_request(msg: Message, args: Any) -> str | None:
    if type(args) is not list or len(args) < 2:
        return None
    a, b = args[0], args[1]
    if msg.side == "app":
        target = _named({1: "outlet", 2: "deco"}, a, f"target {_json(a, 20)}")
        method = _named(_METHOD_SHORT, b, _json(b, 20))
        return f"{target} (method {method})"
    device = _named(_DEVICE_SHORT, a, f"device {_json(a, 20)}")
    status = _named({1: "continues", 0: "failed"}, b, f"status {_json(b, 20)}")
    return f"{device} {status}"


def _sum_ota_push(msg: Message, args: Any) -> str | None:
    if type(args) is not list or len(args) < 2:
        return None
    dt, value = args[0], args[1]
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


def _sum_single(labels: dict[int, str]) -> Callable[[Message, Any], str | None]:
    def summarise(msg: Message, args: Any) -> str | None:
        if type(args) is not list or len(args) != 1:
            return None
        return _named(labels, args[0], _json(args[0], 20))

    return summarise


def _sum_calibration(msg: Message, args: Any) -> str | None:
    if type(args) is not list or len(args) != 1:
        return None
    return f"{_num(args[0])} s"


def _sum_temp_rh(msg: Message, args: Any) -> str | None:
    if type(args) is not list or len(args) != 2:
        return None
    return f"{_milli(args[0], '°C')}, {_milli(args[1], '% RH')}"


_SUMMARIES: Final[dict[int, Callable[[Message, Any], str | None]]] = {
    1: _sum_config,
    2: _sum_config,
    3: _sum_names,
    4: _sum_names,
    9: _sum_outlets,
    10: _sum_outlet_control,
    11: _sum_sensors,
    12: _sum_device_info,
    14: _sum_on_brightness,
    15: _sum_on_brightness,
    17: _sum_color,
    18: _sum_color,
    20: _sum_updates,
    21: _sum_ota_request,
    22: _sum_ota_push,
    23: _sum_ota_push,
    26: _sum_calibration,
    27: _sum_single(_MQTT_SUBS),
    28: _sum_temp_rh,
}


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
    fn = _SUMMARIES.get(cb)
    text = fn(msg, args) if fn is not None else None
    if text is None:
        text = _json(args, 80)
    # Requests read as commands ("Perform OTA update: ..."), outlet messages as state.
    head = spec.name if msg.side == "app" else spec.label
    if cb == 21 and msg.side == "outlet":
        # with a PUBACK it is the ack (whatever it carries); without, the revB sync status
        head = "OTA ack" if puback is not None else "OTA status"
    tail = ""
    if puback == 0 and type(puback) is int:
        tail = f" [PUBACK 0: {puback_meaning(cb, 0)}]"
    line = f"{head}: {text}{tail}"
    # Device strings (names, versions) are shown verbatim; keep them on one line.
    return line if line.isprintable() else _printable(line)


def _printable(text: str) -> str:
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
