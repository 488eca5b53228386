"""Redaction removes every secret in every form, from every output, and says which.

The property tests plant random secrets (strings written with random JSON escapes,
unicode, numbers, objects, duplicate keys, URL passwords holding '@', frames made
invalid by a NaN or a stray byte) in cb1 replies and cb2 requests, cut the stream at
random, and look for each secret, raw, escaped and decoded, in the redacted events and
in the analysis of them (what ``export`` as trace/capture/jsonl and ``analyze --json``
write), and for its message id and field in the report.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from proxy.core.analysis import analyze
from proxy.core.events import Close, Data, Event, Open
from proxy.core.framing import Framer
from proxy.store.recording import load_events
from proxy.store.redact import Pseudonyms, redact_events, redact_frame

ROOT = Path(__file__).resolve().parents[2]
SECRET_REPLY = (
    b'{"sn":"11B27540076","packetID":123457,"PUBACK":1,"payload":{"callbackName":1,'
    b'"callbackArgs":{"sys_prefs":{"mqtt":{"enabled":1,'
    b'"mqtt_broker_url":"mqtt://bob:s3cret@10.0.0.2:1883","user":"ha","pass":"hunter2"}}}}}\n'
)
OTHER = b'{"sn":"11B27540076","packetID":5,"payload":{"callbackName":9,"callbackArgs":[1,0]}}\n'


def stream(chunks: list[bytes], transport: str = "tcp") -> list[Event]:
    events: list[Event] = [Open(0.0, "c1", transport, "127.0.0.1:1", "10.0.0.5:3333")]  # type: ignore[arg-type]
    events += [Data(0.1 * (i + 1), "c1", "outlet", c) for i, c in enumerate(chunks)]
    events.append(Close(9.0, "c1", "outlet"))
    return events


def outlet_bytes(events: list[Event]) -> bytes:
    return b"".join(e.data for e in events if isinstance(e, Data))


def test_secrets_are_replaced_and_reported_by_message_and_field() -> None:
    out, report = redact_events(stream([OTHER, SECRET_REPLY, OTHER]))
    data = outlet_bytes(out)
    for secret in (b"hunter2", b"s3cret", b'"ha"', b"bob"):
        assert secret not in data
    assert b'"<redacted>"' in data and b"mqtt://<redacted>@10.0.0.2:1883" in data
    assert [(r.message, r.field) for r in report.removals] == [
        (1, "sys_prefs.mqtt.mqtt_broker_url (credentials in the URL)"),
        (1, "sys_prefs.mqtt.user"),
        (1, "sys_prefs.mqtt.pass"),
    ]
    # everything else is byte-identical, and the result still parses
    assert data.startswith(OTHER) and data.endswith(OTHER)
    values = [f.value for e in out for f in Framer().feed(e) if f.error is None]
    assert len(values) == 3


def test_nothing_to_redact_leaves_events_identical() -> None:
    events = stream([OTHER, OTHER])
    out, report = redact_events(events)
    assert out == events and report.removals == [] and report.frames == 0


# ----------------------------------------------------------------- the forms of issue 8


def _config(mqtt: str, cb: int = 1) -> bytes:
    if cb == 1:
        return (
            b'{"sn":"11B27540076","packetID":123457,"PUBACK":1,"payload":{"callbackName":1,'
            b'"callbackArgs":{"sys_prefs":{"mqtt":' + mqtt.encode() + b"}}}}\n"
        )
    return (
        b'{"packetID":123457,"payload":{"callbackName":2,"callbackArgs":[{"sys_prefs":{"mqtt":'
        + mqtt.encode()
        + b"}}]}}\n"
    )


@pytest.mark.parametrize(
    ("mqtt", "gone", "field"),
    [
        ('{"pass":"PASS\\u0053ECRET"}', ["PASSSECRET", "PASS\\u0053ECRET"], "sys_prefs.mqtt.pass"),
        (
            '{"mqtt_broker_url":"mqtt:\\/\\/bob:pw@broker"}',
            ["bob:pw", "bob"],
            "sys_prefs.mqtt.mqtt_broker_url (credentials in the URL)",
        ),
        ('{"pass":987654321}', ["987654321"], "sys_prefs.mqtt.pass"),
        ('{"pass":{"k":"objsecret"}}', ["objsecret"], "sys_prefs.mqtt.pass"),
        (
            '{"pass":"firstsecret","pass":"second"}',
            ["firstsecret", "second"],
            "sys_prefs.mqtt.pass (duplicate 1 of 2)",
        ),
        (
            '{"mqtt_broker_url":"mqtt://bob:pw@x@broker"}',
            ["bob:pw", "pw@x", "x@broker"],
            "sys_prefs.mqtt.mqtt_broker_url (credentials in the URL)",
        ),
        (
            '{"pass":"nansecret","x":NaN}',
            ["nansecret"],
            "pass (invalid frame: scrubbed from this key to its end)",
        ),
        ('{"p\\u0061ss":"escsecret","x":NaN}', ["escsecret"], "pass (invalid frame"),
    ],
)
def test_every_form_named_in_the_issue_is_removed(mqtt: str, gone: list[str], field: str) -> None:
    frame = _config(mqtt)
    out, report = redact_events(stream([OTHER, frame, OTHER]))
    data = outlet_bytes(out)
    for g in gone:
        assert g.encode() not in data
    assert data.startswith(OTHER) and data.endswith(OTHER)
    assert any(r.message == 1 and r.field.startswith(field) for r in report.removals), (
        report.removed
    )
    doc = json.dumps(analyze(out).to_json(), ensure_ascii=False)
    for g in gone:
        assert g not in doc


def test_secrets_hidden_by_a_duplicate_payload_or_outside_mqtt_are_removed() -> None:
    """The decoder sees only the last "payload"; redaction looks in every copy, and a
    password is one under any key (with the user beside it)."""
    frame = (
        b'{"packetID":123457,"payload":{"callbackName":2,"callbackArgs":[{"sys_prefs":{"mqtt":'
        b'{"pass":"hiddensecret"}}}]},"payload":{"callbackName":12},'
        b'"wifi":{"ssid":"home","password":"wifisecret"},'
        b'"piece":{"user":"splituser","pass":"splitpass"}}\n'
    )
    out, report = redact_events(stream([OTHER, frame, OTHER]))
    data = outlet_bytes(out)
    for gone in (b"hiddensecret", b"wifisecret", b"splituser", b"splitpass"):
        assert gone not in data
    assert b'"payload":{"callbackName":12}' in data, "the duplicate stays, for the analysis"
    assert [r.field for r in report.removals] == [
        "[0].sys_prefs.mqtt.pass",
        "wifi.password",
        "piece.user",
        "piece.pass",
    ]


def test_a_stray_byte_makes_the_frame_invalid_and_it_is_scrubbed_from_the_key() -> None:
    frame = _config('{"user":"bytesuser","pass":"ffsecret\xff"}').replace(b"\xc3\xbf", b"\xff")
    assert b"\xff" in frame
    out, report = redact_events(stream([OTHER, frame, OTHER]))
    data = outlet_bytes(out)
    assert b"ffsecret" not in data and b"bytesuser" not in data
    # cut at the first secret key; the open brackets closed, so the frame ends as before
    assert (
        b'"mqtt":{"user":"<redacted>","<redacted>":NaN}}}}}\n' in data
    )  # cut at the first secret key
    assert [r.field.split(" ")[0] for r in report.removals] == ["user", "pass"]
    # the frame after it is untouched and still decodes
    kinds = [m.kind for m in analyze(out).messages]
    assert kinds[1] == "invalid" and kinds[2] != "invalid"


@pytest.mark.parametrize("at", range(1, 30))
def test_garbage_cut_by_a_chunk_boundary_cannot_hide_the_key_from_its_value(at: int) -> None:
    """A chunk boundary between the key and its value: the framer keeps the garbage in
    one invalid frame whatever the chunking (it waits for the next '{'), and the secret
    is scrubbed from it, wherever the cut falls."""
    garbage = b'{"x":{"y":1}bad,"pass":"cutsecret"}'  # no '{' after the error
    cut = garbage.index(b'"pass"') + 1 + (at - 1) % 11  # inside the key or its value
    events = stream([OTHER + garbage[:cut], garbage[cut:] + b"\n", OTHER])
    before = [m for m in analyze(events).messages if m.kind == "invalid"]
    assert len(before) == 1, "chunking does not change frames"
    out, report = redact_events(events)
    assert b"cutsecret" not in outlet_bytes(out)
    assert [(r.message, r.field.split(" ")[0]) for r in report.removals] == [(before[0].id, "pass")]
    assert outlet_bytes(out).endswith(OTHER)


def test_a_frame_split_over_chunks_completes_in_the_same_event() -> None:
    """The rewritten frame ends in the chunk the original ended in (same ``t``)."""
    whole = OTHER + SECRET_REPLY + OTHER
    chunks = [whole[i : i + 5] for i in range(0, len(whole), 5)]
    out, _ = redact_events(stream(chunks))
    before = [(m.t, m.callback) for m in analyze(stream(chunks)).messages]
    after = [(m.t, m.callback) for m in analyze(out).messages]
    assert before == after
    assert outlet_bytes(out).endswith(OTHER)


def test_the_url_password_may_hold_at_signs_in_the_detail_and_annotation_too() -> None:
    from proxy.core.protocol import redact_url, secret_kind

    assert redact_url("mqtt://bob:pw@x@broker:1883") == "mqtt://<redacted>@broker:1883"
    assert secret_kind("mqtt_broker_url", "mqtt://broker:1883", True) is None
    assert secret_kind("pass", 0, False) == "value"  # a number is a secret too


# ----------------------------------------------------------------- property: any form


@dataclass
class Planted:
    """A secret put in a frame: its decoded text, how it was written, its key."""

    text: str
    spelled: str
    key: str


_SECRET_CHARS = st.characters(
    codec="utf-8", exclude_characters='"\\', exclude_categories=("Cs", "Cc")
)


@st.composite
def spelled_string(draw: st.DrawFn, text: str) -> str:
    """``text`` as a JSON string literal, each character maybe written as an escape."""
    out = ['"']
    for ch in text:
        how = draw(st.sampled_from(["raw", "raw", "u", "solidus"]))
        if how == "u" and ord(ch) < 0x10000:
            out.append(f"\\u{ord(ch):04x}")
        elif how == "solidus" and ch == "/":
            out.append("\\/")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


@st.composite
def secret_text(draw: st.DrawFn) -> str:
    # a marker makes a chance match with other bytes impossible
    return "Zq" + draw(st.text(_SECRET_CHARS, min_size=3, max_size=12)) + "Xj"


@st.composite
def planted_frame(draw: st.DrawFn) -> tuple[bytes, list[Planted], bool]:
    """One cb1 reply or cb2 request with secrets; whether it is an invalid frame."""
    planted: list[Planted] = []
    members: list[str] = ['"enabled":1']
    for key in draw(st.lists(st.sampled_from(["user", "pass", "url", "pass"]), min_size=1)):
        form = draw(st.sampled_from(["string", "number", "object", "unicode"]))
        text = draw(secret_text())
        if key == "url":
            user = draw(secret_text())
            password = text + "@" + draw(secret_text())  # an '@' in the password
            url = f"mqtt://{user}:{password}@broker:1883"
            members.append(f'"mqtt_broker_url":{draw(spelled_string(url))}')
            planted += [Planted(user, user, "mqtt_broker_url")]
            planted += [Planted(password, password, "mqtt_broker_url")]
            continue
        if form == "number":
            text = str(draw(st.integers(10**14, 10**15 - 1)))
            spelled = text
        elif form == "object":
            spelled = '{"k":' + draw(spelled_string(text)) + "}"
        else:
            if form == "unicode":
                text = text + "é✓😀"
            spelled = draw(spelled_string(text))
        members.append(f'"{key}":{spelled}')
        planted.append(Planted(text, spelled, key))
    broken = draw(st.sampled_from([None, None, "nan", "byte"]))
    if broken == "nan":
        members.append('"x":NaN')
    order = draw(st.permutations(members))
    mqtt = "{" + ",".join(order) + "}"
    raw = _config(mqtt, draw(st.sampled_from([1, 2])))
    if broken == "byte":
        raw = raw.replace(b'"enabled":1', b'"enabled":"\xff"')
    return raw, planted, broken is not None


def _forms(p: Planted) -> list[bytes]:
    text = p.text
    return [
        text.encode(),
        p.spelled.encode(),
        json.dumps(text).encode(),
        json.dumps(text, ensure_ascii=False).encode(),
    ]


def _strings(doc: Any) -> list[str]:
    if isinstance(doc, str):
        return [doc]
    if isinstance(doc, dict):
        return [s for k, v in doc.items() for s in [str(k), *_strings(v)]]
    if isinstance(doc, list):
        return [s for v in doc for s in _strings(v)]
    return [str(doc)]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    frames=st.lists(planted_frame(), min_size=1, max_size=3),
    cuts=st.lists(st.integers(1, 2000), max_size=12),
    transport=st.sampled_from(["tcp", "tcp", "ws"]),
)
def test_random_secrets_at_random_chunkings_are_gone_from_every_output(
    frames: list[tuple[bytes, list[Planted], bool]], cuts: list[int], transport: str
) -> None:
    pieces = [OTHER]
    for raw, _, _ in frames:
        pieces += [raw, OTHER]
    if transport == "ws":
        chunks = pieces
    else:
        whole = b"".join(pieces)
        points = sorted({c % len(whole) for c in cuts} - {0})
        chunks = [whole[a:b] for a, b in zip([0, *points], [*points, len(whole)], strict=True)]
    events = stream(chunks, transport)
    original = analyze(events)
    out, report = redact_events(events)

    data = outlet_bytes(out)
    decoded = "\n".join(_strings(analyze(out).to_json()))
    for i, (raw, planted, _) in enumerate(frames):
        # message ids: OTHER, frame 0, OTHER, frame 1, ...
        msg_id = 2 * i + 1
        assert original.messages[msg_id].raw.rstrip(b"\n") == raw.rstrip(b"\n")
        named = [r.field for r in report.removals if r.message == msg_id]
        for p in planted:
            for form in _forms(p):
                assert form not in data, (p, data)
            assert p.text not in decoded
            assert any(f.startswith(p.key) or f".{p.key}" in f for f in named), (p, named)
    # the frames without secrets come out as they went in, and frame as before
    assert data.startswith(OTHER) and data.endswith(OTHER)
    assert data.count(OTHER) == len(frames) + 1
    # (same messages, completed by the same events)
    after = [(m.t, m.kind) for m in analyze(out).messages]
    assert after == [(m.t, m.kind) for m in original.messages]


# ----------------------------------------------------------------- --redact=all


SAMPLES = sorted((ROOT / "captures").glob("sample-*.invcap")) + sorted(
    (ROOT / "tests" / "scenarios").glob("*.jsonl")
)


def _mapped(doc: Any, pseudo: Pseudonyms) -> Any:
    if isinstance(doc, str):
        return pseudo.text(doc)
    if isinstance(doc, list):
        return [_mapped(v, pseudo) for v in doc]
    if isinstance(doc, dict):
        return {k: _mapped(v, pseudo) for k, v in doc.items()}
    return doc


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_redact_all_keeps_links_and_ota_sessions(path: Path) -> None:
    """The pseudonymised copy correlates as the original: its links and OTA sessions
    are the original's, with each identifier in their texts read through the table."""
    with load_events(str(path)) as source:
        events = list(source.events)
    out, report = redact_events(events, pseudonymise=True)
    pseudo = report.pseudo
    assert pseudo is not None
    before = analyze(events).to_json()
    after = analyze(out).to_json()
    assert after["links"] == _mapped(before["links"], pseudo)
    assert after["ota"] == _mapped(before["ota"], pseudo)
    assert [m["kind"] for m in after["messages"]] == [m["kind"] for m in before["messages"]]
    # no original identifier is left anywhere in the copy
    text = json.dumps(after, ensure_ascii=False)
    wire = b"".join(e.data for e in out if isinstance(e, Data))
    addresses = " ".join(f"{e.app} {e.outlet}" for e in out if isinstance(e, Open))
    originals = [*pseudo.serials, *pseudo.macs, *(k for k, v in pseudo.ips.items() if k != v)]
    for original in originals:
        assert original not in text and original.encode() not in wire
        assert original not in addresses
    for mac in pseudo.macs:
        assert mac.upper().encode() not in wire


def test_redact_all_replaces_open_addresses_and_payload_identifiers_consistently() -> None:
    info = (
        b'{"sn":"11B27540076","packetID":5,"PUBACK":1,"payload":{"callbackName":12,'
        b'"callbackArgs":{"IM":{"sn":"11B27540076","MAC":"A4:CF:12:00:00:01","fw_rev":"1.0.0.12"},'
        b'"wifi":{"ssid":"HomeNet","ip":"192.168.1.50","server":"10.1.2.3"},'
        b'"note":"outlet 11B27540076 at A4-CF-12-00-00-01","sub_sn":"7"}}}\n'
    )
    events: list[Event] = [
        Open(0.0, "c1", "tcp", "192.168.1.20:5000", "192.168.1.50:3333"),
        Data(0.1, "c1", "outlet", info),
        Open(1.0, "c2", "ws", "192.168.1.20:5001", "192.168.1.50:80"),
        Data(1.1, "c2", "outlet", info),
    ]
    out, report = redact_events(events, pseudonymise=True)
    opens = [e for e in out if isinstance(e, Open)]
    assert [(o.app, o.outlet) for o in opens] == [
        ("198.18.0.1:5000", "198.18.0.2:3333"),
        ("198.18.0.1:5001", "198.18.0.2:80"),
    ]
    datas = [e.data for e in out if isinstance(e, Data)]
    assert datas[0] == datas[1]
    value = json.loads(datas[0])
    assert value["sn"] == value["payload"]["callbackArgs"]["IM"]["sn"] == "SN-1"
    assert value["payload"]["callbackArgs"]["IM"]["MAC"] == "02:00:00:00:00:01"
    assert value["payload"]["callbackArgs"]["IM"]["fw_rev"] == "1.0.0.12"  # not an address
    args = value["payload"]["callbackArgs"]
    assert args["wifi"] == {"ssid": "SSID-1", "ip": "198.18.0.2", "server": "198.18.0.3"}
    # inside free text too, the MAC in its own spelling; a short serial only by its key
    assert args["note"] == "outlet SN-1 at 02-00-00-00-00-01" and args["sub_sn"] == "SN-2"
    assert report.pseudonyms == {
        "serial numbers": 2,
        "MAC addresses": 1,
        "IP addresses": 3,
        "SSIDs": 1,
    }


def test_redact_frame_keeps_duplicates_numbers_and_whitespace_around() -> None:
    raw = b' {"payload":{"callbackArgs":{"pass":"x","n":1.50,"n":12345678901234567890123}}}\n'
    new, fields, _ = redact_frame(raw, True)
    assert new == (
        b' {"payload":{"callbackArgs":{"pass":"<redacted>",'
        b'"n":1.50,"n":12345678901234567890123}}}\n'
    )
    assert fields == ["pass"]
    assert redact_frame(OTHER, True)[0] is OTHER


@pytest.mark.parametrize(
    ("text", "redacted"),
    [
        (
            'cb:2 -> set payload.callbackArgs.0.sys_prefs.mqtt.pass="hunter2"',
            'cb:2 -> set payload.callbackArgs.0.sys_prefs.mqtt.pass="<redacted>"',
        ),
        (
            "cb:1 -> reply payload.callbackArgs.password=secret PUBACK=1",
            'cb:1 -> reply payload.callbackArgs.password="<redacted>" PUBACK=1',
        ),
        (
            r'changed by rule 1: cb:2 -> set payload.psk="a \" b"',
            'changed by rule 1: cb:2 -> set payload.psk="<redacted>"',
        ),
        ("cb:22 -> drop", "cb:22 -> drop"),
        ("cb:2 -> set payload.bypass=1", "cb:2 -> set payload.bypass=1"),
    ],
)
def test_a_rules_own_credential_is_redacted_from_its_text(text: str, redacted: str) -> None:
    from proxy.store.redact import redact_rule_text

    assert redact_rule_text(text) == redacted


def test_an_exported_interventions_rule_text_loses_the_credential_it_sets() -> None:
    from proxy.core.events import Data, Intervention, Open
    from proxy.store.redact import redact_events

    rule = 'cb:2 -> set payload.callbackArgs.0.sys_prefs.mqtt.pass="hunter2"'
    mark = Intervention("set", "rule", rule, None, f"changed by rule 1: {rule}")

    def config(password: str) -> bytes:
        args = [{"sys_prefs": {"mqtt": {"pass": password}}}]
        body = {"packetID": 1, "payload": {"callbackName": 2, "callbackArgs": args}}
        return json.dumps(body, separators=(",", ":")).encode()

    sent, got = config("hunter2"), config("old")
    opened = Open(0.0, "c1", "tcp", "a", "o")
    out, _ = redact_events([opened, Data(0.1, "c1", "app", sent, True, False, mark, got)])
    (data,) = [e for e in out if isinstance(e, Data)]
    assert data.intervention is not None
    assert "hunter2" not in (data.intervention.rule or "") + (data.intervention.why or "")
    assert b"hunter2" not in data.data and b"old" not in (data.original or b"")
