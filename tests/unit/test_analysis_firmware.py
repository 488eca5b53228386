"""Firmware tracking alone (proxy.core.analysis.firmware)."""

from __future__ import annotations

from proxy.core import protocol
from proxy.core.analysis.firmware import (
    DECO_REBOOT_GRACE,
    Device,
    Devices,
    after_reboot,
    device_key,
    record,
    verdict,
)
from proxy.core.model import Connection, OtaSession
from tests.unit.analysis_parts import Messages

OFFER = {
    "IM": {"fw_rev": "0.0.1", "available_fw_rev": "0.0.2"},
    "PM": {"fw_rev": "0.5.0", "available_fw_rev": "0.5.1"},
}


def test_device_key_is_the_host_whatever_the_port() -> None:
    assert device_key("10.0.0.5:3333") == device_key("10.0.0.5:80") == "10.0.0.5"
    assert device_key("[fe80::1]:3333") == "fe80::1"
    assert device_key("outlet.local") == "outlet.local"
    assert device_key("odd:name") == "odd:name"


def test_tcp_and_ws_connections_to_one_outlet_share_its_device() -> None:
    conns = {
        "t": Connection("t", "tcp", "10.0.0.2:5000", "10.0.0.5:3333", 0.0),
        "w": Connection("w", "ws", "10.0.0.3:5001", "10.0.0.5:80", 0.0),
    }
    devices = Devices(conns)
    assert devices.of("t") is devices.of("w")
    assert devices.of("not-opened").key == "?"
    assert sorted(devices.by_key) == ["10.0.0.5", "?"]


def test_a_cb20_is_the_offer_and_a_cb12_keeps_what_was_offered() -> None:
    m, device = Messages(), Device("o")
    offer = m.add(1.0, "c1", "outlet", 1, 20, OFFER)
    record(device, offer, protocol.firmware_versions(20, offer.args))
    assert device.firmware == {"outlet": ("0.0.1", "0.0.2"), "deco": ("0.5.0", "0.5.1")}
    assert device.offers == {"outlet": offer, "deco": offer} and device.sn == offer.sn
    info = m.add(2.0, "c1", "outlet", 2, 12, {"IM": {"fw_rev": "0.0.2"}})
    record(device, info, protocol.firmware_versions(12, info.args))
    assert device.firmware["outlet"] == ("0.0.2", "0.0.2")
    assert device.offers["outlet"] is offer


def session(target: str, **fields: object) -> OtaSession:
    s = OtaSession(target=target, started=0.0, last_activity=10.0, **fields)  # type: ignore[arg-type]
    s.ended = 10.0
    return s


def test_an_outlet_read_counts_only_from_after_its_reboot() -> None:
    m = Messages()
    reply = m.add(20.0, "c1", "outlet", 3, 12, {})
    reply.kind = "response"
    old_conn = Connection("c1", "tcp", "a:1", "o:3333", 5.0)
    new_conn = Connection("c1", "tcp", "a:1", "o:3333", 15.0)
    rebooted = session("outlet", reboot_t=12.0)
    assert not after_reboot(rebooted, reply, old_conn, "0.0.2")
    assert after_reboot(rebooted, reply, new_conn, "0.0.2")
    assert not after_reboot(session("outlet"), reply, new_conn, "0.0.2")  # a reply, no restart
    push = m.add(20.0, "c1", "outlet", 4, 12, {})
    assert after_reboot(session("outlet"), push, new_conn, "0.0.2")  # its comeback push
    assert not after_reboot(rebooted, push, None, "0.0.2")


def test_a_deco_read_counts_once_it_changed_was_seen_down_or_the_grace_is_over() -> None:
    m = Messages()
    soon = m.add(15.0, "c1", "outlet", 3, 12, {})
    late = m.add(10.0 + DECO_REBOOT_GRACE + 0.1, "c1", "outlet", 4, 12, {})
    assert not after_reboot(session("deco", fw_before="0.5.0"), soon, None, "0.5.0")
    assert after_reboot(session("deco", fw_before="0.5.0"), soon, None, "0.5.1")
    seen_down = session("deco", fw_before="0.5.0", module_down_seen=True)
    assert after_reboot(seen_down, soon, None, "0.5.0")
    assert after_reboot(session("deco", fw_before="0.5.0"), late, None, "0.5.0")


def test_the_verdict_compares_with_the_offered_version() -> None:
    assert verdict(session("outlet", fw_expected="0.0.2"), "0.0.2") == (
        True,
        "it matches the expected 0.0.2",
    )
    assert verdict(session("outlet", fw_expected="0.0.2"), "0.0.1")[0] is False
    assert verdict(session("outlet"), "0.0.2")[0] is None
