"""Build the scenario traces (DESIGN 4.1 JSONL) from the protocol reference.

Run `python tests/scenarios/build_traces.py` to regenerate the committed ``*.jsonl``
files. Each scenario is written as the wire would carry it, following
protocol/README section 4 (revA/revB/deco timelines) and section 6 (quirks). The
expected analysis of each is written by hand in tests/unit/test_scenarios.py.

Over 500 lines because it holds all 31 stories next to the steps they are told in; the
message numbers in their comments are what tests/unit/test_scenarios.py refers to.
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


class Timeline:
    """The clock and the app's next port of a capture written by hand, event by event.

    Shared with the hand-built captures of tests/unit/test_analysis_ota.py."""

    def __init__(self, first_port: int) -> None:
        self.t = 0.0
        self.ports = iter(range(first_port, 60000))

    def _at(self, dt: float) -> float:
        """The time ``dt`` seconds after the previous event (rounded as traces store it)."""
        self.t = round(self.t + dt, 6)
        return self.t


class Trace(Timeline):
    """A tiny DSL: every call appends one event, ``dt`` seconds after the previous."""

    def __init__(self, title: str) -> None:
        super().__init__(first_port=50122)
        self.lines: list[dict[str, Any]] = [{"invisproxy_trace": 1, "title": title}]
        self.transport: dict[str, str] = {}

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

    def reboot_announcing(
        self,
        old: str,
        new: str,
        pid: int,
        im_fw: str,
        pm_fw: str | None = "0.5.0",
        *,
        after: float = 0.01,
        back: float,
        dt: float = 0.2,
    ) -> None:
        """The outlet restarts, then announces itself to the app back on ``new``: a cb12
        push of its device info (the firmware that verifies an update)."""
        self.reboot(old, new, after=after, back=back)
        self.push(new, pid, 12, device_info(im_fw, pm_fw), dt=dt)

    def reboot_syncing(
        self,
        old: str,
        new: str,
        pid: int,
        status: int,
        *,
        after: float = 0.01,
        back: float,
        dt: float = 0.4,
    ) -> None:
        """revB restarts on its cb21 ``pid``, then answers it on ``new``: a cb21 [1, status]
        push with the request's packetID (the synchronous result)."""
        self.reboot(old, new, after=after, back=back)
        self.push(new, pid, 21, [1, status], dt=dt)

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


def device_config(
    broker: str = "mqtt://10.0.0.2",
    user: str = "ha",
    qos: int = 0,
    internet: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A cb1 reply's device configuration: its MQTT user and password ("hunter2") are the
    secrets the analysis flags and redaction hides."""
    sys_prefs: dict[str, Any] = {
        "mqtt": {
            "enabled": 1,
            "mqtt_broker_url": broker,
            "user": user,
            "pass": "hunter2",
            "qos": qos,
        }
    }
    if internet is not None:
        sys_prefs["internet"] = internet
    return {"acc_prefs": {"outletPwrIndicatorOn": 1}, "sys_prefs": sys_prefs}


def sensors(temp: float = 22.5) -> list[Any]:
    return [1, {"temp_valid": 1, "temp_celsius": temp, "humidity": 41, "AQI": 35}]


# ---------------------------------------------------------------------- scenarios

SCENARIOS: dict[str, Callable[[], Trace]] = {}
"""Each scenario's trace by file name, in the order the stories are written below."""


def scenario(title: str) -> Callable[[Callable[[Trace], None]], Callable[[Trace], None]]:
    """Register the story below under its function's name: it writes, step by step, into
    a fresh trace titled ``title`` (the file's name and title then cannot drift apart)."""

    def register(story: Callable[[Trace], None]) -> Callable[[Trace], None]:
        def build() -> Trace:
            tr = Trace(title)
            story(tr)
            return tr

        SCENARIOS[story.__name__] = build
        return story

    return register


@scenario("revA outlet update over WebSocket")
def reva_outlet_ws(tr: Trace) -> None:
    """revA outlet update over WebSocket: ack, spurious result, WWW phase, reboot, cb12."""
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
    tr.reboot_announcing("c1", "c2", 502211, "0.0.2", after=0.05, back=8.0, dt=0.3)  # msg 19 verify
    tr.req("c2", 221042, 9, dt=0.2)  # msg 20
    tr.reply("c2", 221042, 9, [1, 0])  # msg 21


@scenario("revB outlet update over raw TCP")
def revb_outlet_tcp(tr: Trace) -> None:
    """revB outlet update over TCP: no ack, restart, sync cb21 on the new connection."""
    tr.open("c1", "tcp")
    tr.offer_update("c1", 221040, updates("1.2.0", "1.3.0"))  # msgs 0-1
    tr.request_update("c1", 414883, 1, 0, ack=None, dt=1.0)  # msg 2
    tr.reboot_syncing("c1", "c2", 414883, 1, after=0.2, back=1.0)  # msg 3 sync, same packetID
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
    tr.reboot_announcing("c2", "c3", 700001, "1.3.0", after=0.1, back=6.0)  # msg 12 verify


@scenario("InvisDeco update via Wi-Fi")
def deco_wifi(tr: Trace) -> None:
    """Deco update via its own Wi-Fi: ack, spurious [2,0], the outlet connection stays up."""
    tr.open("c1", "tcp")
    tr.offer_update("c1", 100001)  # msgs 0-1
    tr.request_update("c1", 100002, 2, 0)  # msgs 2-3: ack
    tr.result("c1", 800001, 2, 0)  # msg 4 spurious
    tr.progress("c1", 800010, 2, [0, 50, 100])  # msgs 5-7
    tr.result("c1", 800020, 2, 1)  # msg 8 success
    tr.read_device_info("c1", 100003, "0.0.1", pm_fw=None, dt=1.0)  # msgs 9-10: PM absent
    tr.push("c1", 800030, 12, device_info("0.0.1", pm_fw="0.5.1"), dt=12.0)  # msg 11 verify
    tr.push("c1", 800031, 11, sensors(), dt=3.0)  # msg 12


@scenario("InvisDeco update via the outlet, wrong firmware afterwards")
def deco_via_outlet_mismatch(tr: Trace) -> None:
    """Deco update through the outlet whose reported firmware is not the one expected."""
    tr.open("c1", "ws")
    tr.offer_update("c1", 100001, updates(pm="0.5.0", pm_new="0.6.0"))  # msgs 0-1
    tr.request_update("c1", 100002, 2, 1)  # msgs 2-3
    tr.progress("c1", 800010, 2, [0, 100])  # msgs 4-5
    tr.result("c1", 800020, 2, 1)  # msg 6
    # msgs 7-8: verify, mismatch
    tr.offer_update("c1", 100003, updates(pm="0.5.0", pm_new="0.6.0"), dt=65.0)


@scenario("OTA refused (already up to date)")
def refused(tr: Trace) -> None:
    """revA answers PUBACK 0: already up to date."""
    tr.open("c1", "ws")
    tr.offer_update("c1", 100001, updates("0.0.2", "0.0.2"))  # msgs 0-1
    tr.request_update("c1", 100002, 1, 0, ack=0)  # msgs 2-3
    tr.push("c1", 900001, 11, sensors(), dt=5.0)  # msg 4


@scenario("OTA failed during the main phase")
def failed_main_phase(tr: Trace) -> None:
    """Progress begins, then cb23 [1, 0]: a real failure."""
    tr.open("c1", "ws")
    tr.request_update("c1", 100002, 1, 0)  # msgs 0-1
    tr.result("c1", 900001, 1, 0)  # msg 2 spurious
    tr.progress("c1", 900002, 1, [10, 30], dt=0.5)  # msgs 3-4
    tr.result("c1", 900004, 1, 0)  # msg 5 failure


@scenario("revB OTA failed: synchronous cb21 status 0")
def failed_revb_sync(tr: Trace) -> None:
    """revB: the synchronous cb21 after the restart says 0."""
    tr.open("c1", "tcp")
    tr.request_update("c1", 414883, 1, 0, ack=None)  # msg 0
    tr.reboot_syncing("c1", "c2", 414883, 0, back=2.0, dt=0.3)  # msg 1
    tr.push("c2", 900005, 11, sensors(), dt=2.0)  # msg 2


@scenario("OTA stalled at 40 %")
def stalled(tr: Trace) -> None:
    """Progress stops at 40 % while sensor pushes go on for 90 s."""
    tr.open("c1", "ws")
    tr.request_update("c1", 100002, 1, 0)  # msgs 0-1
    tr.progress("c1", 900002, 1, [20, 40])  # msgs 2-3
    for i in range(9):  # msgs 4-12, every 10 s
        tr.push("c1", 910000 + i, 11, sensors(22.0 + i / 10), dt=10.0)


@scenario("OTA still in progress when the capture ends")
def in_progress(tr: Trace) -> None:
    """The capture ends 10 s into the update."""
    tr.open("c1", "ws")
    tr.request_update("c1", 100002, 1, 0)  # msgs 0-1
    tr.progress("c1", 900002, 1, [20])  # msg 2
    tr.push("c1", 900003, 11, sensors(), dt=9.0)  # msg 3


@scenario("OTA progress whose request is not in the capture")
def orphan_progress(tr: Trace) -> None:
    """The capture starts mid-update: no cb21 in it."""
    tr.open("c1", "tcp")
    tr.progress("c1", 900001, 1, [60], dt=0.5)  # msg 0
    tr.progress("c1", 900002, 1, [80, 100])  # msgs 1-2
    tr.result("c1", 900004, 1, 1, dt=1.0)  # msg 3
    tr.reboot_announcing("c1", "c2", 900005, "0.0.2", back=5.0)  # msg 4


@scenario("Outlet and deco updates at the same time")
def concurrent_outlet_and_deco(tr: Trace) -> None:
    """An outlet and a deco update at once on one connection (revA, WebSocket)."""
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
    tr.reboot_announcing("c1", "c2", 800008, "0.0.2", "0.5.1", back=5.0)  # msg 13 outlet verify


@scenario("Sensor pushes and outlet toggles")
def chatter(tr: Trace) -> None:
    """Sensor pushes, outlet toggles, nightlight, unknown callbacks and a lost reply."""
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


@scenario("Two apps connected at once")
def two_apps(tr: Trace) -> None:
    """Two apps at once, both using packetID 123456: their replies stay apart."""
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
    tr.reply("c1", 123457, 1, device_config())  # msg 7: secret


@scenario("TCP framing abuse")
def tcp_framing_abuse(tr: Trace) -> None:
    """Garbage, non-objects, CRLF, merged and split objects, a close mid-value."""
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


@scenario("Two apps connected during one outlet update (revA)")
def two_apps_one_update(tr: Trace) -> None:
    """A phone app and Home Assistant on one outlet: the outlet pushes to both."""
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


@scenario("OTA request sent twice")
def resent_request(tr: Trace) -> None:
    """The app heard no ack and sends cb21 again; the outlet runs one update."""
    tr.open("c1", "ws")
    tr.offer_update("c1", 100001)  # msgs 0-1
    tr.request_update("c1", 100002, 1, 0, ack=None)  # msg 2
    tr.request_update("c1", 100003, 1, 0, dt=5.0)  # msgs 3-4
    tr.progress("c1", 700001, 1, [50])  # msg 5
    tr.result("c1", 700002, 1, 1, dt=1.0)  # msg 6
    tr.reboot_announcing("c1", "c2", 700003, "0.0.2", back=5.0)  # msg 7


@scenario("A second app's OTA request refused during an update")
def second_app_refused(tr: Trace) -> None:
    """While one app's update runs, another app asks for one and is refused."""
    tr.open("c1", "ws")
    tr.open("c2", "ws")
    tr.request_update("c1", 100002, 1, 0)  # msgs 0-1
    tr.progress("c1", 700001, 1, [30])  # msg 2
    tr.request_update("c2", 200002, 1, 0, ack=0, dt=0.5)  # msgs 3-4
    tr.progress("c1", 700002, 1, [100])  # msg 5
    tr.result("c1", 700003, 1, 1, dt=1.0)  # msg 6


@scenario("A failure whose update started before the capture")
def midcapture_failure(tr: Trace) -> None:
    """The capture begins after the update started; the first thing seen is a failure."""
    tr.open("c1", "tcp")
    tr.result("c1", 700001, 1, 0, dt=0.5)  # msg 0
    for i in range(3):  # msgs 1-3
        tr.push("c1", 700010 + i, 11, sensors(), dt=10.0)


@scenario("A spurious result whose update started before the capture")
def midcapture_spurious_result(tr: Trace) -> None:
    """The capture begins with a status-0 result, and progress follows: the quirk."""
    tr.open("c1", "tcp")
    tr.result("c1", 700001, 1, 0, dt=0.5)  # msg 0
    tr.progress("c1", 700002, 1, [50, 100])  # msgs 1-2
    tr.result("c1", 700004, 1, 1, dt=1.0)  # msg 3


@scenario("Deco update: device info before, during and after the deco's reboot")
def deco_early_device_info(tr: Trace) -> None:
    """Device info read before the deco went down still shows the old firmware."""
    tr.open("c1", "tcp")
    tr.offer_update("c1", 100001)  # msgs 0-1
    tr.request_update("c1", 100002, 2, 1)  # msgs 2-3
    tr.progress("c1", 800010, 2, [100])  # msg 4
    tr.result("c1", 800011, 2, 1, dt=0.5)  # msg 5
    tr.read_device_info("c1", 100003, "0.0.1", "0.5.0", dt=0.05)  # msgs 6-7: deco not yet down
    tr.read_device_info("c1", 100004, "0.0.1", None, dt=2.0)  # msgs 8-9: deco rebooting
    tr.read_device_info("c1", 100005, "0.0.1", "0.5.1", dt=10.0)  # msgs 10-11: verify


@scenario("Deco update: the old version read 11 s after the result, the new one at 25 s")
def deco_slow_to_report(tr: Trace) -> None:
    """The deco is never seen down and reports its new firmware only on a later read."""
    tr.open("c1", "tcp")
    tr.offer_update("c1", 100001)  # msgs 0-1
    tr.request_update("c1", 100002, 2, 0)  # msgs 2-3
    tr.result("c1", 800011, 2, 1, dt=1.0)  # msg 4
    tr.read_device_info("c1", 100003, "0.0.1", "0.5.0", dt=11.0)  # msgs 5-6: not yet
    tr.read_device_info("c1", 100004, "0.0.1", "0.5.1", dt=14.0)  # msgs 7-8: verify


@scenario("The proxy shut down in the middle of an update")
def proxy_shutdown_mid_update(tr: Trace) -> None:
    """The proxy stops while a revA update downloads: not an outlet restart."""
    tr.open("c1", "ws")
    tr.request_update("c1", 100002, 1, 0)  # msgs 0-1
    tr.progress("c1", 700001, 1, [40])  # msg 2
    tr.close("c1", "proxy", dt=1.0)


def half_way_with_a_second_app(tr: Trace, second: str) -> None:
    """App "a" (WebSocket) updates the outlet while app "b" (over ``second``) is connected
    too: the outlet's 50 % progress to "a" is msg 4."""
    tr.open("a", "ws")
    tr.open("b", second)
    tr.offer_update("a", 100100)  # msgs 0-1
    tr.request_update("a", 100101, 1, 0)  # msgs 2-3
    tr.progress("a", 10, 1, [50], dt=0.5)  # msg 4


@scenario("A copy of the final result arrives late on a second app's connection")
def late_copy_of_result(tr: Trace) -> None:
    """The second app's copy of the final result comes 2.5 s late."""
    half_way_with_a_second_app(tr, "ws")  # msgs 0-4
    tr.progress("b", 10, 1, [50], dt=0.1)  # msg 5
    tr.result("a", 11, 1, 1, dt=0.5)  # msg 6
    tr.result("b", 11, 1, 1, dt=2.5)  # msg 7: late copy
    tr.close("a", "outlet", dt=0.1)
    tr.close("b", "outlet")
    tr.open("c", "ws", dt=5.0)
    tr.push("c", 5, 12, device_info("0.0.2"), dt=0.5)  # msg 8


@scenario("One connection closes after the result, another still answers with old firmware")
def connection_outlives_a_close(tr: Trace) -> None:
    """A close by an unknown side is not the reboot if another connection still works."""
    half_way_with_a_second_app(tr, "tcp")  # msgs 0-4
    tr.result("a", 11, 1, 1, dt=0.5)  # msg 5
    tr.close("b", None, dt=0.2)
    tr.read_device_info("a", 100102, "0.0.1", dt=0.1)  # msgs 6-7: before the reboot
    tr.reboot_announcing("a", "c", 5, "0.0.2", after=1.0, back=5.0, dt=0.5)  # msg 8


@scenario("OTA request unanswered, its retry refused")
def refused_retry(tr: Trace) -> None:
    """No answer to cb21, then a second cb21 refused: the update never started."""
    tr.open("a", "ws")
    tr.offer_update("a", 100100, updates("0.0.2", "0.0.2"))  # msgs 0-1
    tr.request_update("a", 100101, 1, 0, ack=None)  # msg 2
    tr.request_update("a", 100102, 1, 0, ack=0, dt=5.0)  # msgs 3-4
    tr.req("a", 100103, 9, dt=100.0)  # msg 5
    tr.reply("a", 100103, 9, [1, 0])  # msg 6


@scenario("Deco update: a second cb21 during the deco's reboot is refused")
def deco_retry_during_reboot(tr: Trace) -> None:
    """The app asks for the deco update again while the deco reboots; the outlet refuses."""
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


@scenario("revA outlet update whose acknowledgement also carries a cb21 payload")
def ack_with_payload(tr: Trace) -> None:
    """revA acknowledges with PUBACK and the request's packetID, plus a cb21 payload."""
    tr.open("c1", "ws")
    tr.offer_update("c1", 100001)  # msgs 0-1
    tr.request_update("c1", 100002, 1, 0, ack=None)  # msg 2
    tr.reply("c1", 100002, 21, [1, 0], puback=1, dt=0.001)  # msg 3: the ack, 1 ms later
    tr.result("c1", 800001, 1, 0)  # msg 4 spurious
    tr.progress("c1", 800010, 1, [0, 50, 100])  # msgs 5-7
    tr.result("c1", 800020, 1, 1)  # msg 8 success
    tr.reboot_announcing("c1", "c2", 800030, "0.0.2", back=5.0)  # msg 9 verify


@scenario("Deco update without an acknowledgement")
def deco_no_ack(tr: Trace) -> None:
    """A deco update whose cb21 is never acknowledged (the outlet should have)."""
    tr.open("c1", "tcp")
    tr.offer_update("c1", 100001)  # msgs 0-1
    tr.request_update("c1", 100002, 2, 1, ack=None)  # msg 2: no ack follows
    tr.result("c1", 800001, 2, 0)  # msg 3 spurious
    tr.progress("c1", 800010, 2, [0, 50, 100])  # msgs 4-6
    tr.result("c1", 800020, 2, 1)  # msg 7
    tr.push("c1", 800030, 12, device_info("0.0.1", pm_fw=None), dt=5.0)  # msg 8: rebooting
    tr.push("c1", 800031, 12, device_info("0.0.1", pm_fw="0.5.1"), dt=30.0)  # msg 9 verify


@scenario("The app gives up on a stalled update and closes its connection")
def app_gave_up_close(tr: Trace) -> None:
    """Progress stops in the WWW phase; 72 s later the app closes its connection."""
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


@scenario("The app gives up on a stalled revB update and asks again")
def app_gave_up_retry(tr: Trace) -> None:
    """revB: progress stops after the reconnect; 75 s later the app sends cb21 again."""
    tr.open("c1", "tcp")
    tr.offer_update("c1", 100001, updates("1.2.0", "1.3.0"))  # msgs 0-1
    tr.request_update("c1", 414883, 1, 0, ack=None, dt=1.0)  # msg 2
    tr.reboot_syncing("c1", "c2", 414883, 1, after=0.2, back=1.0)  # msg 3 sync
    tr.progress("c2", 600100, 1, [0, 40])  # msgs 4-5: the last OTA news
    for i in range(7):  # msgs 6-12
        tr.push("c2", 910000 + i, 11, sensors(), dt=10.0)
    tr.request_update("c2", 414884, 1, 0, ack=None, dt=5.0)  # msg 13: 75 s after msg 5
    tr.close("c2", "outlet", dt=0.2)  # revB restarts at once again


@scenario("The app keeps waiting after its update was refused")
def refusal_ignored(tr: Trace) -> None:
    """PUBACK 0 although a newer version is offered; the app waits, polls, then leaves."""
    tr.open("c1", "ws")
    tr.offer_update("c1", 100001)  # msgs 0-1: IM 0.0.1, 0.0.2 available
    tr.request_update("c1", 100002, 1, 0, ack=0)  # msgs 2-3: refused all the same
    for i in range(4):  # msgs 4-11: cb12 polls 20 s apart
        tr.req("c1", 100010 + i, 12, dt=20.0)
        tr.reply("c1", 100010 + i, 12, device_info("0.0.1"))
    tr.close("c1", "app", dt=1.0)  # 81 s after the refusal


REFUSE_RULE = "cb:21 dir:app -> reply puback=0"
SET_RULE = "cb:23 arg.0:1 arg.1:1 -> set payload.callbackArgs.1=0"
SYNC_RULE = "cb:21 dir:outlet -> drop"
PROGRESS_RULE = "cb:22 arg.1:40-100 -> drop"


@scenario("OTA refused by the proxy (reply rule)")
def rule_refusal(tr: Trace) -> None:
    """A reply rule answers the app's cb21 with PUBACK 0; the outlet never sees it."""
    tr.open("c1", "ws")
    tr.offer_update("c1", 100001, updates("0.0.1", "0.0.2"))  # msgs 0-1
    tr.req("c1", 100002, 21, [1, 0])  # msg 2, answered by the proxy
    tr.intervene("reply", REFUSE_RULE, why="answered by the proxy by rule 1")
    tr.reply("c1", 100002, puback=0)  # msg 3, the proxy's answer
    tr.intervene("reply", REFUSE_RULE, why="answered by the proxy by rule 1", injected=True)
    tr.push("c1", 900001, 11, sensors(), dt=5.0)  # msg 4


@scenario("OTA success shown to the app as a failure (set rule)")
def rule_success_to_failure(tr: Trace) -> None:
    """The outlet reports success; a set rule shows the app a failure."""
    tr.open("c1", "ws")
    tr.request_update("c1", 100002, 1, 0)  # msgs 0-1
    tr.progress("c1", 900002, 1, [10, 60, 100], dt=0.5)  # msgs 2-4
    success = tr._encode(
        "c1",
        {"sn": SN, "packetID": 900005, "payload": {"callbackName": 23, "callbackArgs": [1, 1]}},
    )
    tr.result("c1", 900005, 1, 0)  # msg 5: forwarded as [1, 0]
    tr.intervene("set", SET_RULE, why="changed by rule 1", received=success)


@scenario("revB OTA: synchronous status dropped (drop rule)")
def rule_sync_lost(tr: Trace) -> None:
    """revB: the synchronous cb21 (status 1) is dropped; the app sees progress and a result
    for an update it never heard had begun."""
    tr.open("c1", "tcp")
    tr.request_update("c1", 414883, 1, 0, ack=None)  # msg 0
    tr.reboot("c1", "c2", back=2.0)
    tr.push("c2", 414883, 21, [1, 1], dt=0.3)  # msg 1, dropped
    tr.intervene("drop", SYNC_RULE, why="dropped by rule 1")
    tr.progress("c2", 900010, 1, [20, 100])  # msgs 2-3
    tr.result("c2", 900020, 1, 1)  # msg 4


@scenario("OTA progress dropped from 40 % (drop rule)")
def rule_progress_stops(tr: Trace) -> None:
    """Progress from 40 % on is dropped; the outlet goes on and succeeds."""
    tr.open("c1", "ws")
    tr.request_update("c1", 100002, 1, 0)  # msgs 0-1
    tr.progress("c1", 900002, 1, [10, 30], dt=1.0)  # msgs 2-3
    for i, percent in enumerate([40, 70, 100]):  # msgs 4-6, dropped
        tr.push("c1", 900004 + i, 22, [1, percent], dt=1.0)
        tr.intervene("drop", PROGRESS_RULE, why="dropped by rule 1")
    tr.result("c1", 900010, 1, 1)  # msg 7


def main() -> int:
    for name, build in SCENARIOS.items():
        path = build().write(name)
        print(path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
