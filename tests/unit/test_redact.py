"""Redaction works on raw bytes and keeps everything but the secrets."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from proxy.core.events import Close, Data, Event, Open
from proxy.core.framing import Framer
from proxy.store.redact import redact_events

SECRET_REPLY = (
    b'{"sn":"11B27540076","packetID":123457,"PUBACK":1,"payload":{"callbackName":1,'
    b'"callbackArgs":{"sys_prefs":{"mqtt":{"enabled":1,'
    b'"mqtt_broker_url":"mqtt://bob:s3cret@10.0.0.2:1883","user":"ha","pass":"hunter2"}}}}}\n'
)
OTHER = b'{"sn":"11B27540076","packetID":5,"payload":{"callbackName":9,"callbackArgs":[1,0]}}\n'


def stream(chunks: list[bytes]) -> list[Event]:
    events: list[Event] = [Open(0.0, "c1", "tcp", "127.0.0.1:1", "10.0.0.5:3333")]
    events += [Data(0.1 * (i + 1), "c1", "outlet", c) for i, c in enumerate(chunks)]
    events.append(Close(9.0, "c1", "outlet"))
    return events


def outlet_bytes(events: list[Event]) -> bytes:
    return b"".join(e.data for e in events if isinstance(e, Data))


def test_secrets_are_replaced_and_reported() -> None:
    out, report = redact_events(stream([OTHER, SECRET_REPLY, OTHER]))
    data = outlet_bytes(out)
    for secret in (b"hunter2", b"s3cret", b'"ha"', b"bob"):
        assert secret not in data
    assert b'"<redacted>"' in data and b"mqtt://<redacted>@10.0.0.2:1883" in data
    assert len(report.removed) == 3 and report.replaced == 3
    assert any("pass" in r for r in report.removed)
    # everything else is byte-identical, and the result still parses
    assert data.startswith(OTHER) and data.endswith(OTHER)
    values = [f.value for e in out for f in Framer().feed(e) if f.error is None]
    assert len(values) == 3


def test_nothing_to_redact_leaves_events_identical() -> None:
    events = stream([OTHER, OTHER])
    out, report = redact_events(events)
    assert out == events and report.removed == [] and report.replaced == 0


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=len(SECRET_REPLY) - 1), max_size=6))
def test_a_secret_split_across_chunks_is_still_removed(cuts: list[int]) -> None:
    """However TCP cut the reply, no secret survives and the chunk count is kept."""
    whole = OTHER + SECRET_REPLY
    points = sorted({c + len(OTHER) for c in cuts})
    chunks = [whole[a:b] for a, b in zip([0, *points], [*points, len(whole)], strict=True)]
    out, _ = redact_events(stream(chunks))
    data = outlet_bytes(out)
    assert b"hunter2" not in data and b"s3cret" not in data
    assert len([e for e in out if isinstance(e, Data)]) == len(chunks)
    (value,) = [json.loads(line) for line in data.splitlines() if b'"callbackName":1' in line]
    assert value["payload"]["callbackArgs"]["sys_prefs"]["mqtt"]["pass"] == "<redacted>"
