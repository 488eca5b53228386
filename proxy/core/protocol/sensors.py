"""The sensor callbacks: readings (cb11), occupancy calibration (cb26), MQTT status and
Home Assistant discovery (cb27), temperature/RH calibration (cb28)."""

from __future__ import annotations

from typing import Any, Final

from proxy.core.model import Message
from proxy.core.protocol.common import (
    Field,
    _bad,
    _fields_for,
    _first,
    _is_num,
    _json,
    _named,
    _num,
    _one_in,
    _raw_fields,
    _replied,
    _requested,
    _sum_single,
    _summary_for,
)
from proxy.core.protocol.spec import CallbackSpec, callback

# ---------------------------------------------------------------------------
# Readings (cb11)

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


@_replied
def _check_sensors(msg: Message, args: Any) -> None:
    if type(args) is not list or len(args) != 2 or type(args[1]) is not dict:
        _bad(msg, f"expected [deco_type, {{readings}}], got {_json(args, 60)}")


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


# ---------------------------------------------------------------------------
# Occupancy calibration (cb26)


_check_calibration: Final = _requested(_one_in("[seconds] (30-60 advised)", 1, 86400, whole=False))


@_fields_for(1)
def _calibration_fields(msg: Message, args: list[Any]) -> list[Field]:
    return [
        Field("seconds", _json(args[0], 40), "calibration time (30 recommended, 30-60 advised)")
    ]


@_summary_for(1)
def _sum_calibration(msg: Message, args: list[Any]) -> str:
    return f"{_num(args[0])} s"


# ---------------------------------------------------------------------------
# MQTT status / Home Assistant discovery (cb27)

_MQTT_SUBS: Final = {
    0: "check MQTT status",
    1: "clear Home Assistant discovery payload",
    2: "send Home Assistant discovery payload",
}
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


def _mqtt_puback(puback: int, request_args: Any) -> str | None:
    sub = _first(request_args)
    if type(sub) is int and sub in _CB27_PUBACK:
        return _CB27_PUBACK[sub][1 - puback]
    if request_args is None:  # the sub-command is unknown: say both
        return _CB27_EITHER[1 - puback]
    return None


_check_mqtt: Final = _requested(_one_in("[sub 0|1|2]", 0, 2))


@_fields_for(1)
def _mqtt_fields(msg: Message, args: list[Any]) -> list[Field]:
    return [Field("sub", _json(args[0], 40), _named(_MQTT_SUBS, args[0]))]


# ---------------------------------------------------------------------------
# Temperature/RH calibration (cb28), in milli-units


def _milli(v: Any, unit: str) -> str:
    if type(v) is int and abs(v) > 10**15:
        return f"{v}e-3 {unit}"  # beyond float range for huge ints
    return f"{_num(v / 1000)} {unit}" if _is_num(v) else "not a number"


@_requested
def _check_temp_rh(msg: Message, args: Any) -> None:
    if type(args) is not list or len(args) != 2 or not all(_is_num(a) for a in args):
        _bad(msg, f"expected [temp m°C, RH milli-%], got {_json(args, 60)}")
    elif not -40000 <= args[0] <= 125000 or not 0 <= args[1] <= 100000:
        _bad(msg, f"{_json(args, 40)} outside -40..125 °C / 0..100 % RH (milli-units)")


@_fields_for(2)
def _temp_rh_fields(msg: Message, args: list[Any]) -> list[Field]:
    return [
        Field("temperature", _json(args[0], 40), _milli(args[0], "°C")),
        Field("humidity", _json(args[1], 40), _milli(args[1], "% RH")),
    ]


@_summary_for(2)
def _sum_temp_rh(msg: Message, args: list[Any]) -> str:
    return f"{_milli(args[0], '°C')}, {_milli(args[1], '% RH')}"


# ---------------------------------------------------------------------------
# The specs

SPECS: Final[tuple[CallbackSpec, ...]] = (
    callback(
        11,
        "Fetch sensors",
        "Sensors",
        arguments="request: none; reply/push: [deco_type, {readings}]",
        check=_check_sensors,
        fields=_sensors_fields,
        summary=_sum_sensors,
        pushed=True,
    ),
    callback(
        26,
        "Occupancy sensor calibration",
        "Occupancy calibration",
        arguments="request: [seconds] (30-60 advised)",
        check=_check_calibration,
        fields=_calibration_fields,
        summary=_sum_calibration,
        ok="accepted, starts in 10 s",
        fail="timed out reaching the sensor",
    ),
    callback(
        27,
        "MQTT status / Home Assistant discovery",
        "MQTT/HA",
        arguments="request: [sub 0 status | 1 clear discovery | 2 send discovery]",
        check=_check_mqtt,
        fields=_mqtt_fields,
        summary=_sum_single(_MQTT_SUBS),
        ok="broker connected",
        fail="not connected",
        puback_detail=_mqtt_puback,
    ),
    callback(
        28,
        "Temperature/RH calibration",
        "Temp/RH calibration",
        arguments="request: [temperature m°C, RH milli-%]",
        check=_check_temp_rh,
        fields=_temp_rh_fields,
        summary=_sum_temp_rh,
    ),
)
