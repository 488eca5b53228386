"""The simulated outlet's state and its answers to the callback catalog (protocol/README §3).

No I/O and no clock here: :class:`DeviceState` answers one request with a
:class:`Reply` (what to send back, what to push to everyone, and any slow action the
server must run, such as a restart). OTA (cb21) is timing, so it lives in ``sim.py``.
"""

from __future__ import annotations

import copy
import random
from dataclasses import dataclass, field
from typing import Any, Final, Literal

Json = Any
JsonObject = dict[str, Any]

NIGHTLIGHT: Final = 5
INDICATOR: Final = 7
LED_COUNT: Final = {NIGHTLIGHT: 9, INDICATOR: 7}
DECO_TYPE: Final = 1

NO_PAYLOAD: Final = object()
"""Marks a pure acknowledgement: the reply carries ``sn``, ``packetID`` and ``PUBACK`` only."""

Action = Literal["restart", "factory-reset", "deco-restart"]


@dataclass(slots=True)
class Reply:
    """What one request causes: the reply (None for fire-and-forget), pushes, an action."""

    puback: int | None
    args: Json = NO_PAYLOAD
    pushes: list[tuple[int, Json]] = field(default_factory=list)
    action: Action | None = None


@dataclass(slots=True)
class Firmware:
    """Running and available versions; ``www`` is the outlet's web-UI partition."""

    im: str = "0.0.1"
    im_available: str = "0.0.2"
    www: str = "0.1.2"
    www_available: str = "0.3.0"
    pm: str = "0.5.0"
    pm_available: str = "0.5.1"

    def outlet_current(self) -> bool:
        return self.im == self.im_available and self.www == self.www_available

    def deco_current(self) -> bool:
        return self.pm == self.pm_available


def _default_config() -> JsonObject:
    return {
        "acc_prefs": {
            "outletPwrIndicatorOn": 1,
            "pmIndicatorBrightness": 50,
            "capacitiveCtrl": 1,
            "aqiColorRGBFeature": 0,
            "motionAwayFeature": 0,
            "adaptiveNightlightFeature": 0,
            "adaptiveMinBrightness": 10,
            "adaptiveMaxBrightness": 100,
            "occupancyNightlightFeature": 0,
            "overrideAdaptiveOccupancyNightlightFeature": 0,
            "magicTouchCtrl": 0,
            "homeAwayMode": {
                "enabled": 0,
                "outlet1Enabled": 0,
                "outlet2Enabled": 0,
                "nightlightEnabled": 0,
                "minBrightness": 20,
                "maxBrightness": 80,
                "minOnDuration": 30,
                "maxOnDuration": 120,
                "minOffDuration": 30,
                "maxOffDuration": 120,
            },
        },
        "sys_prefs": {
            "mqtt": {
                "enabled": 1,
                "mqtt_broker_url": "mqtt://192.168.1.10:1883",
                "user": "invis",
                "pass": "s3cret-mqtt-pass",
                "qos": 1,
            },
            "internet": {"ip": "192.168.1.50", "mainDNS": "192.168.1.1", "backupDNS": "1.1.1.1"},
        },
    }


def _default_names() -> dict[int, str]:
    return {1: "Outlet 1", 2: "Outlet 2", 3: "Nightlight"}


def _default_lights() -> dict[int, list[Json]]:
    """Per light: ``[mode, leds, speed, random, level]``; an LED is ``[state, bri, [h, s], K]``."""
    return {
        light: [1, [[1, 100, [30, 80], 2700] for _ in range(n)], 1, 0, 40]
        for light, n in LED_COUNT.items()
    }


def _is_int(value: Json) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _merge_known(target: JsonObject, update: JsonObject) -> None:
    """Write ``update`` into ``target``, keeping only keys the device knows."""
    for key, value in update.items():
        if key not in target:
            continue
        if isinstance(target[key], dict):
            if isinstance(value, dict):
                _merge_known(target[key], value)
        elif not isinstance(value, dict | list):
            target[key] = value


@dataclass(slots=True)
class DeviceState:
    """Everything the outlet remembers, and the catalog of requests that read or change it."""

    serial: str
    revision: Literal["A", "B"]
    firmware: Firmware = field(default_factory=Firmware)
    mac: str = "A8:42:E3:4B:07:60"
    deco_serial: str = "11D0457A12"
    deco_mac: str = "A8:42:E3:4B:11:2C"
    outlets: list[int] = field(default_factory=lambda: [1, 0])
    nightlight: list[int] = field(default_factory=lambda: [1, 100])
    lights: dict[int, list[Json]] = field(default_factory=_default_lights)
    names: dict[int, str] = field(default_factory=_default_names)
    config: JsonObject = field(default_factory=_default_config)
    deco_online: bool = True

    # --- what the device reports -------------------------------------------------

    def device_info(self) -> JsonObject:
        """cb12 arguments; ``PM`` is left out while the faceplate is rebooting."""
        info: JsonObject = {
            "IM": {
                "sn": self.serial,
                "MAC": self.mac,
                "device": "InvisOutlet",
                "fw_rev": self.firmware.im,
                "hw_rev": f"rev{self.revision}",
            }
        }
        if self.deco_online:
            info["PM"] = {
                "online": 1,
                "sn": self.deco_serial,
                "MAC": self.deco_mac,
                "device": "InvisDeco Pro",
                "type": DECO_TYPE,
                "fw_rev": self.firmware.pm,
                "hw_rev": "1.2",
                "radar": {"fw_ver": "2.4.1", "hw_type": 2, "MAC": "A8:42:E3:4B:11:2D"},
            }
        return info

    def available_updates(self) -> JsonObject:
        """cb20 arguments."""
        fw = self.firmware
        updates: JsonObject = {
            "IM": {
                "fw_rev": fw.im,
                "available_fw_rev": fw.im_available,
                "www_fw_rev": fw.www,
                "available_www_fw_rev": fw.www_available,
            }
        }
        if self.deco_online:
            updates["PM"] = {"fw_rev": fw.pm, "available_fw_rev": fw.pm_available}
        return updates

    def sensors(self, rng: random.Random) -> list[Json]:
        """cb11 arguments: ``[deco_type, readings]`` with a little noise so pushes differ."""
        readings: JsonObject = {
            "temp_valid": 1,
            "aqi_valid": 1,
            "temp_celsius": round(22.0 + rng.uniform(-0.5, 0.5), 2),
            "humidity": round(45.0 + rng.uniform(-2, 2), 2),
            "AQI": rng.randint(25, 60),
            "AQI_accuracy": 3,
            "pressure": 101325 + rng.randint(-200, 200),
            "gas": 120000 + rng.randint(-5000, 5000),
            "co2_equiv": rng.randint(500, 800),
            "co2_peak_lvl": 820,
            "co2_accuracy": 3,
            "bvoc_equiv": round(rng.uniform(0.3, 0.9), 2),
            "bvoc_accuracy": 3,
            "temphumidity_accuracy": 3,
            "lux_valid": 1,
            "lux": rng.randint(80, 200),
            "occupancy_valid": 1,
            "occupancy_state": 1,
            "distance": rng.randint(900, 2500),
            "movement_energy": rng.randint(0, 40),
            "stationary_energy": rng.randint(0, 60),
        }
        return [DECO_TYPE, readings]

    def colour_light(self, light: int) -> list[Json]:
        mode, leds, speed, rand, level = self.lights[light]
        return [light, mode, copy.deepcopy(leds), speed, rand, level]

    def reset_to_factory(self) -> None:
        self.names = _default_names()
        self.config = _default_config()
        self.lights = _default_lights()

    # --- the catalog -------------------------------------------------------------

    def handle(self, callback: int, args: Json) -> Reply:
        """Answer one request (every callback but 21, which ``sim.py`` drives)."""
        handler = _HANDLERS.get(callback)
        if handler is None:
            return Reply(puback=0)
        return handler(self, args)

    def _cb1(self, args: Json) -> Reply:
        return Reply(1, copy.deepcopy(self.config))

    def _cb2(self, args: Json) -> Reply:
        update = args[0] if isinstance(args, list) and len(args) == 1 else args
        if not isinstance(update, dict):
            return Reply(0)
        _merge_known(self.config, update)
        return Reply(1)

    def _cb3(self, args: Json) -> Reply:
        # Real firmware answers with a bare array, not the documented {"payload": [...]}.
        return Reply(1, [{"accessory": k, "name": v} for k, v in sorted(self.names.items())])

    def _cb4(self, args: Json) -> Reply:
        if not isinstance(args, list) or not args:
            return Reply(0)
        new: dict[int, str] = {}
        for entry in args:
            if not isinstance(entry, dict):
                return Reply(0)
            acc, name = entry.get("accessory"), entry.get("name")
            if acc not in self.names or not isinstance(name, str):
                return Reply(0)
            new[acc] = name
        self.names.update(new)
        return Reply(1)

    def _cb5(self, args: Json) -> Reply:
        return Reply(None, action="restart")

    def _cb6(self, args: Json) -> Reply:
        return Reply(None)

    def _cb7(self, args: Json) -> Reply:
        return Reply(None, action="factory-reset")

    def _cb9(self, args: Json) -> Reply:
        return Reply(1, list(self.outlets))

    def _cb10(self, args: Json) -> Reply:
        if not isinstance(args, list) or not args or args[0] not in (1, 2):
            return Reply(0)
        index = args[0] - 1
        if len(args) > 1:
            if args[1] not in (0, 1):
                return Reply(0)
            self.outlets[index] = int(args[1])
        else:
            self.outlets[index] = 1 - self.outlets[index]
        return Reply(1, pushes=[(9, list(self.outlets))])

    def _cb11(self, args: Json) -> Reply:
        # The server fills in the readings (they need its random source).
        return Reply(1 if self.deco_online else 0)

    def _cb12(self, args: Json) -> Reply:
        return Reply(1, self.device_info())

    def _cb14(self, args: Json) -> Reply:
        ok = (
            isinstance(args, list)
            and len(args) >= 2
            and args[0] in (0, 1)
            and _is_int(args[1])
            and 0 <= args[1] <= 100
        )
        if not ok:
            return Reply(0)
        self.nightlight = [int(args[0]), int(args[1])]
        return Reply(1, pushes=[(15, list(self.nightlight))])

    def _cb15(self, args: Json) -> Reply:
        return Reply(1, list(self.nightlight))

    def _cb17(self, args: Json) -> Reply:
        if not isinstance(args, list) or len(args) < 3:
            return Reply(0)
        light, mode, entries = args[0], args[1], args[2]
        if light not in self.lights or mode not in range(1, 8) or not isinstance(entries, list):
            return Reply(0)
        leds = self._apply_leds(light, mode, entries)
        if leds is None:
            return Reply(0)
        _, _, speed, rand, level = self.lights[light]
        extra = [*args[3:6]]
        speed = extra[0] if len(extra) > 0 and _is_int(extra[0]) else speed
        rand = extra[1] if len(extra) > 1 and _is_int(extra[1]) else rand
        level = extra[2] if len(extra) > 2 and _is_int(extra[2]) else level
        self.lights[light] = [mode, leds, speed, rand, level]
        return Reply(1, pushes=[(18, self.colour_light(light))])

    def _apply_leds(self, light: int, mode: int, entries: list[Json]) -> list[Json] | None:
        leds: list[Json] = copy.deepcopy(self.lights[light][1])
        if mode == 2:
            # Temperature entries: [state, bri, kelvin]; a single one is not spread.
            for i, entry in enumerate(entries[: len(leds)]):
                if not (isinstance(entry, list) and len(entry) == 3 and all(map(_is_int, entry))):
                    return None
                leds[i] = [entry[0], entry[1], leds[i][2], entry[2]]
            return leds
        parsed: list[Json] = []
        for entry in entries:
            ok = (
                isinstance(entry, list)
                and len(entry) == 3
                and _is_int(entry[0])
                and _is_int(entry[1])
                and isinstance(entry[2], list)
                and len(entry[2]) == 2
            )
            if not ok:
                return None
            parsed.append(entry)
        if len(parsed) == 1 and mode == 1:
            parsed = parsed * len(leds)  # one HSV entry fills the whole strip
        for i, entry in enumerate(parsed[: len(leds)]):
            leds[i] = [entry[0], entry[1], list(entry[2]), leds[i][3]]
        return leds

    def _cb18(self, args: Json) -> Reply:
        light = args[0] if isinstance(args, list) and args else NIGHTLIGHT
        if light not in self.lights:
            return Reply(0, [])
        return Reply(1, self.colour_light(light))

    def _cb20(self, args: Json) -> Reply:
        return Reply(1, self.available_updates())

    def _cb24(self, args: Json) -> Reply:
        if not self.deco_online:
            return Reply(0)
        return Reply(1, action="deco-restart")

    def _deco_ack(self, args: Json) -> Reply:
        return Reply(1 if self.deco_online else 0)

    def _cb26(self, args: Json) -> Reply:
        ok = isinstance(args, list) and len(args) == 1 and _is_int(args[0]) and args[0] > 0
        return Reply(1 if ok and self.deco_online else 0)

    def _cb27(self, args: Json) -> Reply:
        if not isinstance(args, list) or not args or args[0] not in (0, 1, 2):
            return Reply(0)
        return Reply(1 if self.config["sys_prefs"]["mqtt"]["enabled"] else 0)

    def _cb28(self, args: Json) -> Reply:
        ok = isinstance(args, list) and len(args) == 2 and all(map(_is_int, args))
        return Reply(1 if ok and self.deco_online else 0)


_HANDLERS: Final = {
    1: DeviceState._cb1,
    2: DeviceState._cb2,
    3: DeviceState._cb3,
    4: DeviceState._cb4,
    5: DeviceState._cb5,
    6: DeviceState._cb6,
    7: DeviceState._cb7,
    9: DeviceState._cb9,
    10: DeviceState._cb10,
    11: DeviceState._cb11,
    12: DeviceState._cb12,
    14: DeviceState._cb14,
    15: DeviceState._cb15,
    17: DeviceState._cb17,
    18: DeviceState._cb18,
    20: DeviceState._cb20,
    24: DeviceState._cb24,
    25: DeviceState._deco_ack,
    26: DeviceState._cb26,
    27: DeviceState._cb27,
    28: DeviceState._cb28,
}
