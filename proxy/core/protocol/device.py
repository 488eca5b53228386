"""The device callbacks: configuration (cb1, cb2), device information (cb12), and the
restarts and resets of the outlet (cb5-7) and the deco (cb24, cb25)."""

from __future__ import annotations

import json
from functools import partial
from typing import Any, Final

from proxy.core.model import Message
from proxy.core.protocol.common import (
    Field,
    _bad,
    _clip,
    _fw,
    _json,
    _modules,
    _no_args,
    _no_fields,
    _object_fields,
    _plain,
    _raw_fields,
    _replied,
    _requested,
    _sum_raw,
)
from proxy.core.protocol.redaction import REDACTED, _config_objects, _mqtt_secrets, redact_url
from proxy.core.protocol.spec import CallbackSpec, callback

# ---------------------------------------------------------------------------
# Configuration (cb1 reply, cb2 request)


@_replied
def _check_config_reply(msg: Message, args: Any) -> None:
    if type(args) is not dict:
        _bad(msg, f"device configuration should be an object, got {_json(args, 60)}")


@_requested
def _check_config_set(msg: Message, args: Any) -> None:
    if type(args) is dict:
        return
    if type(args) is list and len(args) == 1 and type(args[0]) is dict:
        return
    _bad(msg, f"expected a config object or a one-element list of one, got {_json(args, 60)}")


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


# ---------------------------------------------------------------------------
# Device information (cb12)


@_replied
def _check_device_info(msg: Message, args: Any) -> None:
    if type(args) is not dict or type(args.get("IM")) is not dict:
        _bad(msg, f"expected {{IM: {{...}}, PM?: {{...}}}}, got {_json(args, 60)}")
    elif "PM" in args and type(args["PM"]) is not dict:
        _bad(msg, f"PM should be an object, got {_json(args['PM'], 40)}")


@_object_fields
def _device_info_fields(msg: Message, args: dict[Any, Any]) -> list[Field]:
    out: list[Field] = []
    for key, block in _modules(args, out):
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


# ---------------------------------------------------------------------------
# The specs

_REBOOTS: Final = "the device reboots; no reply is expected"
_LEAVES: Final = "the device leaves the network; no reply is expected"
_RESETS: Final = "the device resets and reboots; no reply is expected"

# Both configuration callbacks carry the same object, with the same secrets in it.
_config_callback: Final = partial(
    callback, fields=_config_fields, summary=_sum_config, eager=True, secrets=True
)
# The restarts and resets carry nothing either way.
_bare_callback: Final = partial(
    callback, arguments="none", check=_no_args, fields=_no_fields, summary=_sum_raw
)

SPECS: Final[tuple[CallbackSpec, ...]] = (
    _config_callback(
        1,
        "Request device configuration",
        "Config",
        arguments="request: none; reply: the config object",
        check=_check_config_reply,
    ),
    _config_callback(
        2,
        "Configure device configuration",
        "Set config",
        arguments="request: a config object, or a one-element list of one",
        check=_check_config_set,
    ),
    _bare_callback(5, "Restart InvisOutlet", "Restart outlet", never=_REBOOTS),
    _bare_callback(6, "Reset network settings", "Network reset", never=_LEAVES),
    _bare_callback(7, "Factory reset", "Factory reset", never=_RESETS),
    callback(
        12,
        "Get device information",
        "Device info",
        arguments="request: none; reply/push: {IM: {...}, PM?: {...}}",
        check=_check_device_info,
        fields=_device_info_fields,
        summary=_sum_device_info,
        pushed=True,
        eager=True,
    ),
    _bare_callback(24, "Restart InvisDeco", "Restart deco"),
    _bare_callback(25, "Reset InvisDeco", "Reset deco"),
)
