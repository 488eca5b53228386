"""Build the scenario traces (DESIGN 4.1 JSONL) from the protocol reference.

Run `python tests/scenarios/build_traces.py` to regenerate the committed ``*.jsonl``
files. Each scenario is written as the wire would carry it, following
protocol/README section 4 (revA/revB/deco timelines) and section 6 (quirks). The
expected analysis of each is written by hand in tests/unit/test_scenarios.py.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
OUTLET_HOST = "10.0.0.5"
SN = "11B27540076"


class Trace:
    """A tiny DSL: every call appends one event, ``dt`` seconds after the previous."""

    def __init__(self, title: str) -> None:
        self.lines: list[dict[str, Any]] = [{"invisproxy_trace": 1, "title": title}]
        self.t = 0.0
        self.transport: dict[str, str] = {}
        self.ports = iter(range(50122, 60000))

    def _at(self, dt: float) -> float:
        self.t = round(self.t + dt, 6)
        return self.t

    def open(self, conn: str, transport: str = "tcp", dt: float = 0.01) -> None:
        port = 3333 if transport == "tcp" else 80
        self.transport[conn] = transport
        self.lines.append(
            {
                "t": self._at(dt),
                "conn": conn,
                "event": "open",
                "transport": transport,
                "app": f"127.0.0.1:{next(self.ports)}",
                "outlet": f"{OUTLET_HOST}:{port}",
            }
        )

    def raw(self, conn: str, side: str, text: str, dt: float = 0.01) -> None:
        self.lines.append(
            {"t": self._at(dt), "conn": conn, "event": "data", "from": side, "text": text}
        )

    def raw_b64(self, conn: str, side: str, b64: str, dt: float = 0.01) -> None:
        self.lines.append(
            {"t": self._at(dt), "conn": conn, "event": "data", "from": side, "b64": b64}
        )

    def _encode(self, conn: str, obj: dict[str, Any]) -> str:
        text = json.dumps(obj, separators=(",", ":"))
        return text + "\n" if self.transport.get(conn, "tcp") == "tcp" else text

    def req(self, conn: str, pid: int, cb: int, args: Any = None, dt: float = 0.01) -> None:
        payload: dict[str, Any] = {"callbackName": cb}
        if args is not None:
            payload["callbackArgs"] = args
        self.raw(conn, "app", self._encode(conn, {"packetID": pid, "payload": payload}), dt)

    def reply(
        self,
        conn: str,
        pid: int,
        cb: int | None = None,
        args: Any = None,
        puback: int | None = 1,
        dt: float = 0.02,
    ) -> None:
        obj: dict[str, Any] = {"sn": SN, "packetID": pid}
        if puback is not None:
            obj["PUBACK"] = puback
        if cb is not None:
            payload: dict[str, Any] = {"callbackName": cb}
            if args is not None:
                payload["callbackArgs"] = args
            obj["payload"] = payload
        self.raw(conn, "outlet", self._encode(conn, obj), dt)

    def push(self, conn: str, pid: int, cb: int, args: Any, dt: float = 0.5) -> None:
        obj = {"sn": SN, "packetID": pid, "payload": {"callbackName": cb, "callbackArgs": args}}
        self.raw(conn, "outlet", self._encode(conn, obj), dt)

    # The steps below are the protocol's recurring exchanges (README section 4), named so
    # that each scenario reads as its story; each is exactly the req/reply/push calls it
    # replaces, so the traces they write do not change.

    def offer_update(
        self, conn: str, pid: int, offer: dict[str, Any] | None = None, dt: float = 0.01
    ) -> None:
        """The app asks which updates exist (cb20) and the outlet answers: two messages."""
        self.req(conn, pid, 20, dt=dt)
        self.reply(conn, pid, 20, updates() if offer is None else offer)

    def request_update(
        self,
        conn: str,
        pid: int,
        target: int,
        method: int,
        ack: int | None = 1,
        dt: float = 0.01,
    ) -> None:
        """The app's cb21 [target, method], then its PUBACK ``ack`` (None: never answered)."""
        self.req(conn, pid, 21, [target, method], dt=dt)
        if ack is not None:
            self.reply(conn, pid, puback=ack)

    def progress(
        self, conn: str, pid0: int, device_type: int, percents: list[int], dt: float = 1.0
    ) -> None:
        """cb22 pushes, one per percentage, with packetIDs counting up from ``pid0``."""
        for i, percent in enumerate(percents):
            self.push(conn, pid0 + i, 22, [device_type, percent], dt=dt)

    def result(self, conn: str, pid: int, device_type: int, status: int, dt: float = 0.5) -> None:
        """The outlet's cb23 [device_type, status] push (status 0 may be the spurious one)."""
        self.push(conn, pid, 23, [device_type, status], dt=dt)

    def read_device_info(
        self, conn: str, pid: int, im_fw: str, pm_fw: str | None = "0.5.0", dt: float = 0.01
    ) -> None:
        """The app reads device info (cb12) and the outlet answers: two messages."""
        self.req(conn, pid, 12, dt=dt)
        self.reply(conn, pid, 12, device_info(im_fw, pm_fw))

    def reboot(self, old: str, new: str, *, after: float = 0.01, back: float) -> None:
        """The outlet restarts: it closes ``old``, and ``back`` s later the app is on ``new``."""
        self.close(old, "outlet", dt=after)
        self.open(new, self.transport[old], dt=back)

    def close(self, conn: str, by: str | None, dt: float = 0.01) -> None:
        self.lines.append({"t": self._at(dt), "conn": conn, "event": "close", "by": by})

    def intervene(
        self,
        action: str,
        rule: str | None = None,
        *,
        by: str = "rule",
        held: float | None = None,
        why: str | None = None,
        received: str | None = None,
        injected: bool = False,
    ) -> None:
        """Mark the last data event as the relay records an intervention (DESIGN 4.1):
        ``received`` is what arrived when the event's text is what was forwarded instead
        (set, edit); ``injected`` for bytes the proxy made (a reply rule's answer)."""
        line = self.lines[-1]
        assert line["event"] == "data", "an intervention marks a data event"
        line["intervention"] = {"action": action, "by": by, "rule": rule, "held": held}
        if why is not None:
            line["intervention"]["why"] = why
        if received is not None:
            line["original_text"] = received
        if injected:
            line["injected"] = True

    def write(self, name: str) -> Path:
        path = HERE / f"{name}.jsonl"
        with path.open("w", encoding="utf-8") as fh:
            for line in self.lines:
                fh.write(json.dumps(line, ensure_ascii=False) + "\n")
        return path


def device_info(im_fw: str, pm_fw: str | None = "0.5.0") -> dict[str, Any]:
    info: dict[str, Any] = {
        "IM": {"sn": SN, "MAC": "A4:CF:12:00:00:01", "device": "InvisOutlet", "fw_rev": im_fw},
    }
    if pm_fw is not None:
        info["PM"] = {
            "online": 1,
            "sn": "0003D44076",
            "MAC": "A4:CF:12:00:00:02",
            "device": "InvisDeco Pro",
            "type": 1,
            "fw_rev": pm_fw,
        }
    return info


def updates(
    im: str = "0.0.1", im_new: str = "0.0.2", pm: str = "0.5.0", pm_new: str = "0.5.1"
) -> dict[str, Any]:
    return {
        "IM": {
            "fw_rev": im,
            "available_fw_rev": im_new,
            "www_fw_rev": "0.1.2",
            "available_www_fw_rev": "0.3.0",
        },
        "PM": {"fw_rev": pm, "available_fw_rev": pm_new},
    }


def sensors(temp: float = 22.5) -> list[Any]:
    return [1, {"temp_valid": 1, "temp_celsius": temp, "humidity": 41, "AQI": 35}]


# ---------------------------------------------------------------------- scenarios


def reva_outlet_ws() -> Trace:
    """revA outlet update over WebSocket: ack, spurious result, WWW phase, reboot, cb12."""
    tr = Trace("revA outlet update over WebSocket")
    tr.open("c1", "ws")
    tr.req("c1", 221040, 12)  # 1
    tr.reply("c1", 221040, 12, device_info("0.0.1"), puback=None)  # 2 (msg 1)
    tr.offer_update("c1", 221041)  # msgs 2-3
    tr.request_update("c1", 414883, 1, 0, dt=2.0)  # msgs 4-5: ack
    tr.result("c1", 301552, 1, 0)  # msg 6 spurious
    tr.progress("c1", 301600, 3, [0, 25, 50, 75, 100])  # msgs 7-11
    tr.result("c1", 301700, 3, 1)  # msg 12 www done
    tr.progress("c1", 301800, 1, [0, 25, 50, 75, 100])  # msgs 13-17
    tr.result("c1", 301900, 1, 1)  # msg 18 success
    tr.reboot("c1", "c2", after=0.05, back=8.0)
    tr.push("c2", 502211, 12, device_info("0.0.2"), dt=0.3)  # msg 19 verify
    tr.req("c2", 221042, 9, dt=0.2)  # msg 20
    tr.reply("c2", 221042, 9, [1, 0])  # msg 21
    return tr


def revb_outlet_tcp() -> Trace:
    """revB outlet update over TCP: no ack, restart, sync cb21 on the new connection."""
    tr = Trace("revB outlet update over raw TCP")
    tr.open("c1", "tcp")
    tr.offer_update("c1", 221040, updates("1.2.0", "1.3.0"))  # msgs 0-1
    tr.request_update("c1", 414883, 1, 0, ack=None, dt=1.0)  # msg 2
    tr.reboot("c1", "c2", after=0.2, back=1.0)
    tr.push("c2", 414883, 21, [1, 1], dt=0.4)  # msg 3 sync, same packetID
    tr.progress("c2", 600100, 3, [0, 50, 100])  # msgs 4-6
    tr.result("c2", 600200, 3, 1)  # msg 7
    # the device packs two progress objects in one segment, then splits one across reads
    a = json.dumps(
        {"sn": SN, "packetID": 600301, "payload": {"callbackName": 22, "callbackArgs": [1, 0]}}
    )
    b = json.dumps(
        {"sn": SN, "packetID": 600302, "payload": {"callbackName": 22, "callbackArgs": [1, 50]}}
    )
    c = json.dumps(
        {"sn": SN, "packetID": 600303, "payload": {"callbackName": 22, "callbackArgs": [1, 100]}}
    )
    tr.raw("c2", "outlet", a + b, dt=1.0)  # msgs 8, 9
    tr.raw("c2", "outlet", "\r\n" + c[:17], dt=1.0)
    tr.raw("c2", "outlet", c[17:] + "\n", dt=0.01)  # msg 10
    tr.result("c2", 600400, 1, 1)  # msg 11 success
    tr.reboot("c2", "c3", after=0.1, back=6.0)
    tr.push("c3", 700001, 12, device_info("1.3.0"), dt=0.2)  # msg 12 verify
    return tr


def deco_wifi() -> Trace:
    """Deco update via its own Wi-Fi: ack, spurious [2,0], the outlet connection stays up."""
    tr = Trace("InvisDeco update via Wi-Fi")
    tr.open("c1", "tcp")
    tr.offer_update("c1", 100001)  # msgs 0-1
    tr.request_update("c1", 100002, 2, 0)  # msgs 2-3: ack
    tr.result("c1", 800001, 2, 0)  # msg 4 spurious
    tr.progress("c1", 800010, 2, [0, 50, 100])  # msgs 5-7
    tr.result("c1", 800020, 2, 1)  # msg 8 success
    tr.read_device_info("c1", 100003, "0.0.1", pm_fw=None, dt=1.0)  # msgs 9-10: PM absent
    tr.push("c1", 800030, 12, device_info("0.0.1", pm_fw="0.5.1"), dt=12.0)  # msg 11 verify
    tr.push("c1", 800031, 11, sensors(), dt=3.0)  # msg 12
    return tr


def deco_via_outlet_mismatch() -> Trace:
    """Deco update through the outlet whose reported firmware is not the one expected."""
    tr = Trace("InvisDeco update via the outlet, wrong firmware afterwards")
    tr.open("c1", "ws")
    tr.offer_update("c1", 100001, updates(pm="0.5.0", pm_new="0.6.0"))  # msgs 0-1
    tr.request_update("c1", 100002, 2, 1)  # msgs 2-3
    tr.progress("c1", 800010, 2, [0, 100])  # msgs 4-5
    tr.result("c1", 800020, 2, 1)  # msg 6
    # msgs 7-8: verify, mismatch
    tr.offer_update("c1", 100003, updates(pm="0.5.0", pm_new="0.6.0"), dt=65.0)
    return tr


def refused() -> Trace:
    """revA answers PUBACK 0: already up to date."""
    tr = Trace("OTA refused (already up to date)")
    tr.open("c1", "ws")
    tr.offer_update("c1", 100001, updates("0.0.2", "0.0.2"))  # msgs 0-1
    tr.request_update("c1", 100002, 1, 0, ack=0)  # msgs 2-3
    tr.push("c1", 900001, 11, sensors(), dt=5.0)  # msg 4
    return tr


def failed_main_phase() -> Trace:
    """Progress begins, then cb23 [1, 0]: a real failure."""
    tr = Trace("OTA failed during the main phase")
    tr.open("c1", "ws")
    tr.request_update("c1", 100002, 1, 0)  # msgs 0-1
    tr.result("c1", 900001, 1, 0)  # msg 2 spurious
    tr.progress("c1", 900002, 1, [10, 30], dt=0.5)  # msgs 3-4
    tr.result("c1", 900004, 1, 0)  # msg 5 failure
    return tr


def failed_revb_sync() -> Trace:
    """revB: the synchronous cb21 after the restart says 0."""
    tr = Trace("revB OTA failed: synchronous cb21 status 0")
    tr.open("c1", "tcp")
    tr.request_update("c1", 414883, 1, 0, ack=None)  # msg 0
    tr.reboot("c1", "c2", back=2.0)
    tr.push("c2", 414883, 21, [1, 0], dt=0.3)  # msg 1
    tr.push("c2", 900005, 11, sensors(), dt=2.0)  # msg 2
    return tr


def stalled() -> Trace:
    """Progress stops at 40 % while sensor pushes go on for 90 s."""
    tr = Trace("OTA stalled at 40 %")
    tr.open("c1", "ws")
    tr.request_update("c1", 100002, 1, 0)  # msgs 0-1
    tr.progress("c1", 900002, 1, [20, 40])  # msgs 2-3
    for i in range(9):  # msgs 4-12, every 10 s
        tr.push("c1", 910000 + i, 11, sensors(22.0 + i / 10), dt=10.0)
    return tr


def in_progress() -> Trace:
    """The capture ends 10 s into the update."""
    tr = Trace("OTA still in progress when the capture ends")
    tr.open("c1", "ws")
    tr.request_update("c1", 100002, 1, 0)  # msgs 0-1
    tr.progress("c1", 900002, 1, [20])  # msg 2
    tr.push("c1", 900003, 11, sensors(), dt=9.0)  # msg 3
    return tr


def orphan_progress() -> Trace:
    """The capture starts mid-update: no cb21 in it."""
    tr = Trace("OTA progress whose request is not in the capture")
    tr.open("c1", "tcp")
    tr.progress("c1", 900001, 1, [60], dt=0.5)  # msg 0
    tr.progress("c1", 900002, 1, [80, 100])  # msgs 1-2
    tr.result("c1", 900004, 1, 1, dt=1.0)  # msg 3
    tr.reboot("c1", "c2", back=5.0)
    tr.push("c2", 900005, 12, device_info("0.0.2"), dt=0.2)  # msg 4
    return tr


def concurrent_outlet_and_deco() -> Trace:
    """An outlet and a deco update at once on one connection (revA, WebSocket)."""
    tr = Trace("Outlet and deco updates at the same time")
    tr.open("c1", "ws")
    tr.offer_update("c1", 100001, updates("0.0.1", "0.0.2", "0.5.0", "0.5.1"))  # msgs 0-1
    tr.request_update("c1", 100002, 2, 1)  # msgs 2-3: deco
    tr.request_update("c1", 100003, 1, 0)  # msgs 4-5: outlet
    tr.progress("c1", 800001, 2, [50])  # msg 6 deco
    tr.progress("c1", 800002, 1, [50])  # msg 7 outlet
    tr.progress("c1", 800003, 2, [100])  # msg 8 deco
    tr.result("c1", 800004, 2, 1, dt=0.5)  # msg 9 deco success
    tr.progress("c1", 800005, 1, [100])  # msg 10 outlet
    tr.push("c1", 800006, 12, device_info("0.0.1", "0.5.1"), dt=1.0)  # msg 11 deco verify
    tr.result("c1", 800007, 1, 1, dt=1.0)  # msg 12 outlet success
    tr.reboot("c1", "c2", back=5.0)
    tr.push("c2", 800008, 12, device_info("0.0.2", "0.5.1"), dt=0.2)  # msg 13 outlet verify
    return tr


def chatter() -> Trace:
    """Sensor pushes, outlet toggles, nightlight, unknown callbacks and a lost reply."""
    tr = Trace("Sensor pushes and outlet toggles")
    tr.open("c1", "tcp")
    tr.push("c1", 500001, 11, sensors(), dt=0.5)  # msg 0
    tr.req("c1", 123456, 10, [1, 1])  # msg 1
    tr.reply("c1", 123456, 10)  # msg 2 (PUBACK-only reply, callback from the request)
    tr.push("c1", 500002, 9, [1, 0], dt=0.05)  # msg 3
    tr.push("c1", 500003, 11, sensors(22.6), dt=2.0)  # msg 4
    tr.req("c1", 123457, 14, [1, 80])  # msg 5
    tr.reply("c1", 123457, 14)  # msg 6
    tr.push("c1", 500004, 15, [1, 80], dt=0.05)  # msg 7
    tr.req("c1", 123458, 8)  # msg 8: unknown callback, never answered
    tr.req("c1", 42, 9)  # msg 9: bad packetID
    tr.reply("c1", 42, 9, [1, 0])  # msg 10
    tr.req("c1", 123459, 5)  # msg 11: restart, fire-and-forget
    tr.push("c1", 500005, 11, sensors(22.7), dt=40.0)  # msg 12
    return tr


def two_apps() -> Trace:
    """Two apps at once, both using packetID 123456: their replies stay apart."""
    tr = Trace("Two apps connected at once")
    tr.open("c1", "tcp")
    tr.open("c2", "ws")
    tr.req("c1", 123456, 12)  # msg 0
    tr.req("c2", 123456, 9)  # msg 1
    tr.reply("c2", 123456, 9, [0, 1])  # msg 2 -> msg 1
    tr.reply("c1", 123456, 12, device_info("0.0.1"))  # msg 3 -> msg 0
    tr.push("c1", 500001, 9, [0, 1], dt=0.1)  # msg 4
    tr.push("c2", 500001, 9, [0, 1], dt=0.0)  # msg 5
    tr.close("c2", "app", dt=1.0)
    tr.req("c1", 123457, 1, dt=0.5)  # msg 6
    cfg = {
        "acc_prefs": {"outletPwrIndicatorOn": 1},
        "sys_prefs": {
            "mqtt": {
                "enabled": 1,
                "mqtt_broker_url": "mqtt://10.0.0.2",
                "user": "ha",
                "pass": "hunter2",
                "qos": 0,
            }
        },
    }
    tr.reply("c1", 123457, 1, cfg)  # msg 7: secret
    return tr


def tcp_framing_abuse() -> Trace:
    """Garbage, non-objects, CRLF, merged and split objects, a close mid-value."""
    tr = Trace("TCP framing abuse")
    tr.open("c1", "tcp")
    ok1 = '{"packetID":111111,"payload":{"callbackName":9}}'
    tr.raw("c1", "app", ok1 + "\r\n")  # msg 0
    tr.raw("c1", "outlet", 'GARBAGE{"sn":"' + SN + '","packetID":111111,"PUBACK":1,')  # msg 1
    tr.raw("c1", "outlet", '"payload":{"callbackName":9,"callbackArgs":[1,1]}}5 ')  # msgs 2, 3
    tr.raw_b64("c1", "outlet", "//4K")  # msg 6 (garbage until the next "{"): invalid UTF-8
    tr.raw("c1", "app", '{"packetID":222222,"payload":{"callbackName":12}}{"packetID":2')  # msg 4
    tr.raw("c1", "app", '22223,"payload":{"callbackName":15}}\n')  # msg 5
    tr.raw(
        "c1",
        "outlet",
        '{"sn":"' + SN + '","packetID":222223,"payload":{"callbackName":15,"callbackArgs":[0,',
    )
    tr.close("c1", "outlet")  # msg 7: cut mid-value; then msg 4 and 5 go unanswered
    return tr


def two_apps_one_update() -> Trace:
    """A phone app and Home Assistant on one outlet: the outlet pushes to both."""
    tr = Trace("Two apps connected during one outlet update (revA)")
    tr.open("c1", "ws")
    tr.open("c2", "ws")
    tr.offer_update("c1", 100001)  # msgs 0-1
    tr.request_update("c1", 100002, 1, 0)  # msgs 2-3
    pid = 700000
    for args in ([1, 0], [1, 0], [1, 50], [1, 100]):  # msgs 4-11: each pushed to c1 then c2
        cb = 23 if args == [1, 0] and pid == 700000 else 22
        tr.push("c1", pid, cb, args, dt=1.0)
        tr.push("c2", pid, cb, args, dt=0.001)
        pid += 1
    tr.result("c1", 700010, 1, 1, dt=1.0)  # msg 12
    tr.result("c2", 700010, 1, 1, dt=0.001)  # msg 13
    tr.close("c1", "outlet")
    tr.close("c2", "outlet", dt=0.001)
    tr.open("c3", "ws", dt=5.0)
    tr.push("c3", 700020, 12, device_info("0.0.2"), dt=0.2)  # msg 14 verify
    tr.open("c4", "ws", dt=0.5)
    tr.push("c4", 700021, 12, device_info("0.0.2"), dt=0.2)  # msg 15
    return tr


def resent_request() -> Trace:
    """The app heard no ack and sends cb21 again; the outlet runs one update."""
    tr = Trace("OTA request sent twice")
    tr.open("c1", "ws")
    tr.offer_update("c1", 100001)  # msgs 0-1
    tr.request_update("c1", 100002, 1, 0, ack=None)  # msg 2
    tr.request_update("c1", 100003, 1, 0, dt=5.0)  # msgs 3-4
    tr.progress("c1", 700001, 1, [50])  # msg 5
    tr.result("c1", 700002, 1, 1, dt=1.0)  # msg 6
    tr.reboot("c1", "c2", back=5.0)
    tr.push("c2", 700003, 12, device_info("0.0.2"), dt=0.2)  # msg 7
    return tr


def second_app_refused() -> Trace:
    """While one app's update runs, another app asks for one and is refused."""
    tr = Trace("A second app's OTA request refused during an update")
    tr.open("c1", "ws")
    tr.open("c2", "ws")
    tr.request_update("c1", 100002, 1, 0)  # msgs 0-1
    tr.progress("c1", 700001, 1, [30])  # msg 2
    tr.request_update("c2", 200002, 1, 0, ack=0, dt=0.5)  # msgs 3-4
    tr.progress("c1", 700002, 1, [100])  # msg 5
    tr.result("c1", 700003, 1, 1, dt=1.0)  # msg 6
    return tr


def midcapture_failure() -> Trace:
    """The capture begins after the update started; the first thing seen is a failure."""
    tr = Trace("A failure whose update started before the capture")
    tr.open("c1", "tcp")
    tr.result("c1", 700001, 1, 0, dt=0.5)  # msg 0
    for i in range(3):  # msgs 1-3
        tr.push("c1", 700010 + i, 11, sensors(), dt=10.0)
    return tr


def midcapture_spurious_result() -> Trace:
    """The capture begins with a status-0 result, and progress follows: the quirk."""
    tr = Trace("A spurious result whose update started before the capture")
    tr.open("c1", "tcp")
    tr.result("c1", 700001, 1, 0, dt=0.5)  # msg 0
    tr.progress("c1", 700002, 1, [50, 100])  # msgs 1-2
    tr.result("c1", 700004, 1, 1, dt=1.0)  # msg 3
    return tr


def deco_early_device_info() -> Trace:
    """Device info read before the deco went down still shows the old firmware."""
    tr = Trace("Deco update: device info before, during and after the deco's reboot")
    tr.open("c1", "tcp")
    tr.offer_update("c1", 100001)  # msgs 0-1
    tr.request_update("c1", 100002, 2, 1)  # msgs 2-3
    tr.progress("c1", 800010, 2, [100])  # msg 4
    tr.result("c1", 800011, 2, 1, dt=0.5)  # msg 5
    tr.read_device_info("c1", 100003, "0.0.1", "0.5.0", dt=0.05)  # msgs 6-7: deco not yet down
    tr.read_device_info("c1", 100004, "0.0.1", None, dt=2.0)  # msgs 8-9: deco rebooting
    tr.read_device_info("c1", 100005, "0.0.1", "0.5.1", dt=10.0)  # msgs 10-11: verify
    return tr


def deco_slow_to_report() -> Trace:
    """The deco is never seen down and reports its new firmware only on a later read."""
    tr = Trace("Deco update: the old version read 11 s after the result, the new one at 25 s")
    tr.open("c1", "tcp")
    tr.offer_update("c1", 100001)  # msgs 0-1
    tr.request_update("c1", 100002, 2, 0)  # msgs 2-3
    tr.result("c1", 800011, 2, 1, dt=1.0)  # msg 4
    tr.read_device_info("c1", 100003, "0.0.1", "0.5.0", dt=11.0)  # msgs 5-6: not yet
    tr.read_device_info("c1", 100004, "0.0.1", "0.5.1", dt=14.0)  # msgs 7-8: verify
    return tr


def proxy_shutdown_mid_update() -> Trace:
    """The proxy stops while a revA update downloads: not an outlet restart."""
    tr = Trace("The proxy shut down in the middle of an update")
    tr.open("c1", "ws")
    tr.request_update("c1", 100002, 1, 0)  # msgs 0-1
    tr.progress("c1", 700001, 1, [40])  # msg 2
    tr.close("c1", "proxy", dt=1.0)
    return tr


def late_copy_of_result() -> Trace:
    """The second app's copy of the final result comes 2.5 s late."""
    tr = Trace("A copy of the final result arrives late on a second app's connection")
    tr.open("a", "ws")
    tr.open("b", "ws")
    tr.offer_update("a", 100100)  # msgs 0-1
    tr.request_update("a", 100101, 1, 0)  # msgs 2-3
    tr.progress("a", 10, 1, [50], dt=0.5)  # msg 4
    tr.progress("b", 10, 1, [50], dt=0.1)  # msg 5
    tr.result("a", 11, 1, 1, dt=0.5)  # msg 6
    tr.result("b", 11, 1, 1, dt=2.5)  # msg 7: late copy
    tr.close("a", "outlet", dt=0.1)
    tr.close("b", "outlet")
    tr.open("c", "ws", dt=5.0)
    tr.push("c", 5, 12, device_info("0.0.2"), dt=0.5)  # msg 8
    return tr


def connection_outlives_a_close() -> Trace:
    """A close by an unknown side is not the reboot if another connection still works."""
    tr = Trace("One connection closes after the result, another still answers with old firmware")
    tr.open("a", "ws")
    tr.open("b", "tcp")
    tr.offer_update("a", 100100)  # msgs 0-1
    tr.request_update("a", 100101, 1, 0)  # msgs 2-3
    tr.progress("a", 10, 1, [50], dt=0.5)  # msg 4
    tr.result("a", 11, 1, 1, dt=0.5)  # msg 5
    tr.close("b", None, dt=0.2)
    tr.read_device_info("a", 100102, "0.0.1", dt=0.1)  # msgs 6-7: before the reboot
    tr.reboot("a", "c", after=1.0, back=5.0)
    tr.push("c", 5, 12, device_info("0.0.2"), dt=0.5)  # msg 8
    return tr


def refused_retry() -> Trace:
    """No answer to cb21, then a second cb21 refused: the update never started."""
    tr = Trace("OTA request unanswered, its retry refused")
    tr.open("a", "ws")
    tr.offer_update("a", 100100, updates("0.0.2", "0.0.2"))  # msgs 0-1
    tr.request_update("a", 100101, 1, 0, ack=None)  # msg 2
    tr.request_update("a", 100102, 1, 0, ack=0, dt=5.0)  # msgs 3-4
    tr.req("a", 100103, 9, dt=100.0)  # msg 5
    tr.reply("a", 100103, 9, [1, 0])  # msg 6
    return tr


def deco_retry_during_reboot() -> Trace:
    """The app asks for the deco update again while the deco reboots; the outlet refuses."""
    tr = Trace("Deco update: a second cb21 during the deco's reboot is refused")
    tr.open("c1", "tcp")
    tr.offer_update("c1", 100001)  # msgs 0-1: PM 0.5.0, 0.5.1 available
    tr.request_update("c1", 100002, 2, 0)  # msgs 2-3: ack
    tr.result("c1", 800001, 2, 0)  # msg 4 spurious
    tr.progress("c1", 800010, 2, [0, 50, 100])  # msgs 5-7
    tr.result("c1", 800020, 2, 1)  # msg 8 success: the deco reboots
    tr.read_device_info("c1", 100003, "0.0.1", pm_fw=None, dt=1.0)  # msgs 9-10: PM absent
    tr.request_update("c1", 100004, 2, 0, ack=0, dt=3.0)  # msgs 11-12: the client retries; refused
    tr.push("c1", 800030, 12, device_info("0.0.1", pm_fw="0.5.1"), dt=12.0)  # msg 13 verify
    tr.push("c1", 800031, 11, sensors(), dt=3.0)  # msg 14
    return tr


def ack_with_payload() -> Trace:
    """revA acknowledges with PUBACK and the request's packetID, plus a cb21 payload."""
    tr = Trace("revA outlet update whose acknowledgement also carries a cb21 payload")
    tr.open("c1", "ws")
    tr.offer_update("c1", 100001)  # msgs 0-1
    tr.request_update("c1", 100002, 1, 0, ack=None)  # msg 2
    tr.reply("c1", 100002, 21, [1, 0], puback=1, dt=0.001)  # msg 3: the ack, 1 ms later
    tr.result("c1", 800001, 1, 0)  # msg 4 spurious
    tr.progress("c1", 800010, 1, [0, 50, 100])  # msgs 5-7
    tr.result("c1", 800020, 1, 1)  # msg 8 success
    tr.reboot("c1", "c2", back=5.0)
    tr.push("c2", 800030, 12, device_info("0.0.2"), dt=0.2)  # msg 9 verify
    return tr


def deco_no_ack() -> Trace:
    """A deco update whose cb21 is never acknowledged (the outlet should have)."""
    tr = Trace("Deco update without an acknowledgement")
    tr.open("c1", "tcp")
    tr.offer_update("c1", 100001)  # msgs 0-1
    tr.request_update("c1", 100002, 2, 1, ack=None)  # msg 2: no ack follows
    tr.result("c1", 800001, 2, 0)  # msg 3 spurious
    tr.progress("c1", 800010, 2, [0, 50, 100])  # msgs 4-6
    tr.result("c1", 800020, 2, 1)  # msg 7
    tr.push("c1", 800030, 12, device_info("0.0.1", pm_fw=None), dt=5.0)  # msg 8: rebooting
    tr.push("c1", 800031, 12, device_info("0.0.1", pm_fw="0.5.1"), dt=30.0)  # msg 9 verify
    return tr


def app_gave_up_close() -> Trace:
    """Progress stops in the WWW phase; 72 s later the app closes its connection."""
    tr = Trace("The app gives up on a stalled update and closes its connection")
    tr.open("c1", "ws")
    tr.offer_update("c1", 100001)  # msgs 0-1
    tr.request_update("c1", 100002, 1, 0)  # msgs 2-3
    tr.result("c1", 900001, 1, 0)  # msg 4 spurious
    tr.progress("c1", 900002, 3, [20, 40])  # msgs 5-6: the last OTA news
    for i in range(7):  # msgs 7-13, every 10 s: sensors are no OTA news
        tr.push("c1", 910000 + i, 11, sensors(22.0 + i / 10), dt=10.0)
    tr.close("c1", "app", dt=2.0)  # 72 s after msg 6
    tr.open("c2", "ws", dt=1.0)
    tr.push("c2", 910010, 11, sensors(), dt=1.0)  # msg 14
    return tr


def app_gave_up_retry() -> Trace:
    """revB: progress stops after the reconnect; 75 s later the app sends cb21 again."""
    tr = Trace("The app gives up on a stalled revB update and asks again")
    tr.open("c1", "tcp")
    tr.offer_update("c1", 100001, updates("1.2.0", "1.3.0"))  # msgs 0-1
    tr.request_update("c1", 414883, 1, 0, ack=None, dt=1.0)  # msg 2
    tr.reboot("c1", "c2", after=0.2, back=1.0)
    tr.push("c2", 414883, 21, [1, 1], dt=0.4)  # msg 3 sync
    tr.progress("c2", 600100, 1, [0, 40])  # msgs 4-5: the last OTA news
    for i in range(7):  # msgs 6-12
        tr.push("c2", 910000 + i, 11, sensors(), dt=10.0)
    tr.request_update("c2", 414884, 1, 0, ack=None, dt=5.0)  # msg 13: 75 s after msg 5
    tr.close("c2", "outlet", dt=0.2)  # revB restarts at once again
    return tr


def refusal_ignored() -> Trace:
    """PUBACK 0 although a newer version is offered; the app waits, polls, then leaves."""
    tr = Trace("The app keeps waiting after its update was refused")
    tr.open("c1", "ws")
    tr.offer_update("c1", 100001)  # msgs 0-1: IM 0.0.1, 0.0.2 available
    tr.request_update("c1", 100002, 1, 0, ack=0)  # msgs 2-3: refused all the same
    for i in range(4):  # msgs 4-11: cb12 polls 20 s apart
        tr.req("c1", 100010 + i, 12, dt=20.0)
        tr.reply("c1", 100010 + i, 12, device_info("0.0.1"))
    tr.close("c1", "app", dt=1.0)  # 81 s after the refusal
    return tr


REFUSE_RULE = "cb:21 dir:app -> reply puback=0"
SET_RULE = "cb:23 arg.0:1 arg.1:1 -> set payload.callbackArgs.1=0"
SYNC_RULE = "cb:21 dir:outlet -> drop"
PROGRESS_RULE = "cb:22 arg.1:40-100 -> drop"


def rule_refusal() -> Trace:
    """A reply rule answers the app's cb21 with PUBACK 0; the outlet never sees it."""
    tr = Trace("OTA refused by the proxy (reply rule)")
    tr.open("c1", "ws")
    tr.offer_update("c1", 100001, updates("0.0.1", "0.0.2"))  # msgs 0-1
    tr.req("c1", 100002, 21, [1, 0])  # msg 2, answered by the proxy
    tr.intervene("reply", REFUSE_RULE, why="answered by the proxy by rule 1")
    tr.reply("c1", 100002, puback=0)  # msg 3, the proxy's answer
    tr.intervene("reply", REFUSE_RULE, why="answered by the proxy by rule 1", injected=True)
    tr.push("c1", 900001, 11, sensors(), dt=5.0)  # msg 4
    return tr


def rule_success_to_failure() -> Trace:
    """The outlet reports success; a set rule shows the app a failure."""
    tr = Trace("OTA success shown to the app as a failure (set rule)")
    tr.open("c1", "ws")
    tr.request_update("c1", 100002, 1, 0)  # msgs 0-1
    tr.progress("c1", 900002, 1, [10, 60, 100], dt=0.5)  # msgs 2-4
    success = tr._encode(
        "c1",
        {"sn": SN, "packetID": 900005, "payload": {"callbackName": 23, "callbackArgs": [1, 1]}},
    )
    tr.result("c1", 900005, 1, 0)  # msg 5: forwarded as [1, 0]
    tr.intervene("set", SET_RULE, why="changed by rule 1", received=success)
    return tr


def rule_sync_lost() -> Trace:
    """revB: the synchronous cb21 (status 1) is dropped; the app sees progress and a result
    for an update it never heard had begun."""
    tr = Trace("revB OTA: synchronous status dropped (drop rule)")
    tr.open("c1", "tcp")
    tr.request_update("c1", 414883, 1, 0, ack=None)  # msg 0
    tr.reboot("c1", "c2", back=2.0)
    tr.push("c2", 414883, 21, [1, 1], dt=0.3)  # msg 1, dropped
    tr.intervene("drop", SYNC_RULE, why="dropped by rule 1")
    tr.progress("c2", 900010, 1, [20, 100])  # msgs 2-3
    tr.result("c2", 900020, 1, 1)  # msg 4
    return tr


def rule_progress_stops() -> Trace:
    """Progress from 40 % on is dropped; the outlet goes on and succeeds."""
    tr = Trace("OTA progress dropped from 40 % (drop rule)")
    tr.open("c1", "ws")
    tr.request_update("c1", 100002, 1, 0)  # msgs 0-1
    tr.progress("c1", 900002, 1, [10, 30], dt=1.0)  # msgs 2-3
    for i, percent in enumerate([40, 70, 100]):  # msgs 4-6, dropped
        tr.push("c1", 900004 + i, 22, [1, percent], dt=1.0)
        tr.intervene("drop", PROGRESS_RULE, why="dropped by rule 1")
    tr.result("c1", 900010, 1, 1)  # msg 7
    return tr


SCENARIOS: dict[str, Callable[[], Trace]] = {
    "reva_outlet_ws": reva_outlet_ws,
    "revb_outlet_tcp": revb_outlet_tcp,
    "deco_wifi": deco_wifi,
    "deco_via_outlet_mismatch": deco_via_outlet_mismatch,
    "refused": refused,
    "failed_main_phase": failed_main_phase,
    "failed_revb_sync": failed_revb_sync,
    "stalled": stalled,
    "in_progress": in_progress,
    "orphan_progress": orphan_progress,
    "concurrent_outlet_and_deco": concurrent_outlet_and_deco,
    "chatter": chatter,
    "two_apps": two_apps,
    "tcp_framing_abuse": tcp_framing_abuse,
    "two_apps_one_update": two_apps_one_update,
    "resent_request": resent_request,
    "second_app_refused": second_app_refused,
    "midcapture_failure": midcapture_failure,
    "midcapture_spurious_result": midcapture_spurious_result,
    "deco_early_device_info": deco_early_device_info,
    "proxy_shutdown_mid_update": proxy_shutdown_mid_update,
    "deco_slow_to_report": deco_slow_to_report,
    "late_copy_of_result": late_copy_of_result,
    "connection_outlives_a_close": connection_outlives_a_close,
    "refused_retry": refused_retry,
    "deco_retry_during_reboot": deco_retry_during_reboot,
    "ack_with_payload": ack_with_payload,
    "deco_no_ack": deco_no_ack,
    "app_gave_up_close": app_gave_up_close,
    "app_gave_up_retry": app_gave_up_retry,
    "refusal_ignored": refusal_ignored,
    "rule_refusal": rule_refusal,
    "rule_success_to_failure": rule_success_to_failure,
    "rule_sync_lost": rule_sync_lost,
    "rule_progress_stops": rule_progress_stops,
}


def main() -> int:
    for name, build in SCENARIOS.items():
        path = build().write(name)
        print(path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
