"""The callback spec registry: each callback is one spec, and a spec is all it takes.

The catalog tests in test_protocol.py check what the specs say against the protocol
reference; these check the shape of the registry itself (issue 9 item 2): every spec
is complete, the families split the catalog between them, and a callback added as one
spec is decoded, checked, summarised and explained with no other table to edit.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from proxy.core.events import Side
from proxy.core.framing import Frame
from proxy.core.model import Message
from proxy.core.protocol import (
    CATALOG,
    CallbackSpec,
    Field,
    adopt_request,
    decode,
    fields,
    is_fire_and_forget,
    name_of,
    ota,
    puback_meaning,
    summary,
)
from proxy.core.protocol import catalog as catalog_module
from proxy.core.protocol.spec import callback

PACKAGE = Path(catalog_module.__file__).parent


def frame(value: Any, side: Side, raw: bytes | None = None) -> Frame:
    return Frame(1.0, "c1", side, json.dumps(value).encode() if raw is None else raw, value)


def message(cb: int, args: Any, side: Side = "app", **envelope: Any) -> Message:
    value = {"packetID": 123456, **envelope, "payload": {"callbackName": cb, "callbackArgs": args}}
    return decode(frame(value, side), 1, "tcp")


def codes(msg: Message) -> list[str]:
    return [a.code for a in msg.annotations]


# --------------------------------------------------------------------------- the registry


@pytest.mark.parametrize("number", sorted(CATALOG))
def test_every_callback_has_a_complete_spec(number: int) -> None:
    spec = CATALOG[number]
    assert spec.number == number
    for text in (spec.name, spec.label, spec.arguments):
        assert type(text) is str and text.strip() == text and text
    assert callable(spec.check) and callable(spec.fields) and callable(spec.summary)
    # Its functions accept what the wire may carry, from either side.
    for side in ("app", "outlet"):
        msg = message(number, ["unexpected", {"shape": None}], side)
        assert isinstance(summary(msg), str)
        assert all(type(f) is Field for f in fields(msg))


@pytest.mark.parametrize("number", sorted(CATALOG))
def test_directions_and_fire_and_forget_agree(number: int) -> None:
    spec = CATALOG[number]
    assert spec.app_sends or spec.outlet_pushes
    assert spec.push_only == (not spec.app_sends)
    if spec.never_answered:
        # a request nobody answers is fire-and-forget, and its request says why
        assert spec.fire_and_forget and spec.fire_and_forget_text and spec.app_sends
    assert bool(spec.fire_and_forget_text) == spec.never_answered


def test_the_families_split_the_catalog_between_them() -> None:
    numbers = [s.number for family in catalog_module.FAMILIES for s in family.SPECS]
    assert len(numbers) == len(set(numbers)), "a callback in two families"
    assert set(numbers) == set(CATALOG)
    assert list(CATALOG) == sorted(CATALOG)


def test_a_callback_specified_twice_is_refused() -> None:
    twice = (CATALOG[10], CATALOG[9], CATALOG[10])
    with pytest.raises(ValueError, match="callback 10 is specified twice"):
        catalog_module._build(twice)
    assert list(catalog_module._build(twice[:2])) == [9, 10]


def test_no_module_of_the_package_outgrows_one_concern() -> None:
    sizes = {p.name: len(p.read_text("utf-8").splitlines()) for p in PACKAGE.glob("*.py")}
    assert "device.py" in sizes and "ota.py" in sizes
    assert {name: n for name, n in sizes.items() if n > 500} == {}


# --------------------------------------------------------------------------- one edit


def _check_buzz(msg: Message, side: Side, args: Any) -> None:
    if side == "app" and (type(args) is not list or len(args) != 1 or type(args[0]) is not int):
        msg.annotate("bad-args", "warning", f"expected [count], got {json.dumps(args)}")


def _buzz_fields(msg: Message, args: Any) -> list[Field]:
    return [Field("count", json.dumps(args[0]), "beeps")] if type(args) is list and args else []


def _buzz_summary(msg: Message, args: Any) -> str | None:
    if type(args) is list and args and type(args[0]) is int:
        return f"beep {args[0]} times"
    return None


def buzzer(**options: Any) -> CallbackSpec:
    """cb30 as a family module would specify it, with ``options`` for ``callback``."""
    return callback(
        30,
        "Sound the buzzer",
        "Buzzer",
        arguments="request: [count]",
        check=_check_buzz,
        fields=_buzz_fields,
        summary=_buzz_summary,
        **options,
    )


BUZZ = buzzer(never="the outlet beeps and says nothing", ok="will beep", fail="no buzzer")


@pytest.fixture
def with_buzzer(monkeypatch: pytest.MonkeyPatch) -> CallbackSpec:
    # The one edit, as a family module's SPECS would make it.
    monkeypatch.setitem(catalog_module.CATALOG, BUZZ.number, BUZZ)
    return BUZZ


def test_a_new_callback_is_unknown_before_its_spec() -> None:
    msg = message(30, [3])
    assert "unknown-callback" in codes(msg)
    assert summary(msg) == "unknown callback 30: [3]"
    assert not is_fire_and_forget(30)


def test_a_new_callback_is_one_spec(with_buzzer: CallbackSpec) -> None:
    request = message(30, [3])
    assert (request.callback, request.name) == (30, "Sound the buzzer") == (30, name_of(30))
    assert [a.text for a in request.annotations] == ["the outlet beeps and says nothing"]
    assert codes(request) == ["fire-and-forget"]
    assert summary(request) == "Sound the buzzer: beep 3 times"
    assert fields(request) == [Field("count", "3", "beeps")]
    assert is_fire_and_forget(30)

    bad = message(30, ["loud"])
    assert codes(bad) == ["bad-args", "fire-and-forget"]
    assert summary(bad) == 'Sound the buzzer: ["loud"]'  # no summary for it: shown raw

    pushed = message(30, [1], "outlet", sn="s")
    assert "unexpected-direction" in codes(pushed)
    assert summary(pushed) == "Buzzer: beep 1 times"

    assert puback_meaning(30, 1) == "will beep"
    ack = decode(frame({"sn": "s", "packetID": 123456, "PUBACK": 0}, "outlet"), 2, "tcp")
    adopt_request(ack, request)
    assert ack.name == "Sound the buzzer"
    assert [a.text for a in ack.annotations] == ["PUBACK 0: no buzzer"]
    assert summary(ack) == "ack: PUBACK 0 (no buzzer)"


def test_only_eager_callbacks_keep_the_decoded_arguments(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The decoded value and the bytes disagree, so where the arguments come from shows:
    # eager ones from the decoded value, the others from raw, when asked.
    value = {"packetID": 123456, "payload": {"callbackName": 30, "callbackArgs": [1]}}
    raw = b'{"packetID":123456,"payload":{"callbackName":30,"callbackArgs":[2]}}'
    monkeypatch.setitem(catalog_module.CATALOG, 30, BUZZ)
    assert decode(frame(value, "app", raw), 1, "tcp").args == [2]
    eager = buzzer(eager=True)
    monkeypatch.setitem(catalog_module.CATALOG, 30, eager)
    assert decode(frame(value, "app", raw), 1, "tcp").args == [1]
    assert all(CATALOG[n].eager_args for n in (21, 22, 23))  # the analysis reads these


# --------------------------------------------------------------------------- OTA tables


def test_ota_targets_and_device_types_come_from_one_table() -> None:
    assert [ota.target_of_request(n) for n in (None, 0, 1, 2, 3)] == [
        None,
        None,
        "outlet",
        "deco",
        None,
    ]
    assert [ota.target_of_device_type(n) for n in (None, 0, 1, 2, 3, 4)] == [
        None,
        None,
        "outlet",
        "deco",
        "outlet",
        None,
    ]
    assert ota.DEVICE_TYPES[ota.WWW_DEVICE_TYPE].phase == "WWW partition"
    # what people read for each number is the table's
    for n, device in ota.DEVICE_TYPES.items():
        progress = message(22, [n, 40], "outlet", sn="s")
        assert summary(progress) == f"OTA progress: {device.short} 40 %"
        assert fields(progress)[0] == Field("device_type", str(n), device.name)
        assert ota.PHASE_NAMES[n] == device.phase
    for n, target in ota.TARGETS.items():
        for m, method in ota.METHODS.items():
            request = message(21, [n, m])
            assert (
                summary(request) == f"Perform OTA update: {target.target} (method {method.short})"
            )
            shown = {f.name: f.meaning for f in fields(request)}
            assert shown["target"] == target.name
            assert shown["method"].startswith(method.meaning)
