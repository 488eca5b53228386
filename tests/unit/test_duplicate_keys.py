"""Duplicate keys: every parser here keeps the last value, the firmware's is unknown, so
a frame with one gets a ``duplicate-key`` warning naming each repeated key by path."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from proxy.core.events import Data, Open
from proxy.core.framing import Framer
from proxy.core.model import Message
from proxy.core.protocol import decode, duplicate_keys, possible_callbacks
from tests.strategies import json_scalars


def decoded(raw: bytes, side: str = "app") -> Message:
    """``raw`` through the real framer (its fast path) and the decoder."""
    framer = Framer()
    framer.feed(Open(0.0, "c1", "tcp", "a:1", "o:2"))
    (frame,) = framer.feed(Data(0.1, "c1", side, raw + b"\n"))  # type: ignore[arg-type]
    assert frame.error is None
    return decode(frame, 0, "tcp")


def dup_notes(msg: Message) -> list[str]:
    return [a.text for a in msg.annotations if a.code == "duplicate-key"]


def test_a_repeated_payload_is_named_with_both_values_and_the_callbacks_it_may_mean() -> None:
    raw = (
        b'{"packetID":123456,"payload":{"callbackName":21,"callbackArgs":[1,0]},'
        b'"payload":{"callbackName":12}}'
    )
    msg = decoded(raw)
    assert msg.callback == 12  # what Python's json keeps
    (note,) = [a for a in msg.annotations if a.code == "duplicate-key"]
    assert note.severity == "warning"
    assert note.text.startswith(
        'duplicate key payload (2 values: {"callbackName":21,"callbackArgs":[1,0]}, '
        '{"callbackName":12}).'
    )
    assert "the outlet's parser keeps is unknown" in note.text
    assert note.text.endswith("so it may act on any of cb12, cb21")
    assert possible_callbacks(raw) == {12, 21}


def test_duplicates_at_any_depth_come_with_their_path() -> None:
    raw = (
        b'{"packetID":123456,"payload":{"callbackName":2,"callbackArgs":'
        b'{"x":1,"x":2,"list":[{"y":"a","y":"b"}]},"callbackName":"5"}}'
    )
    assert duplicate_keys(raw) == [
        ("payload.callbackName", [2, "5"]),
        ("payload.callbackArgs.x", [1, 2]),
        ("payload.callbackArgs.list.0.y", ["a", "b"]),
    ]
    (text,) = dup_notes(decoded(raw))
    assert text.startswith(
        'duplicate keys payload.callbackName (2 values: 2, "5"); '
        "payload.callbackArgs.x (2 values: 1, 2); "
        'payload.callbackArgs.list.0.y (2 values: "a", "b").'
    )
    assert possible_callbacks(raw) == {2, 5}  # "5" is read as 5, as the decoder would


def test_colons_in_strings_and_escapes_neither_hide_one_nor_invent_one() -> None:
    # A ':' spelt \u003a in the surviving value makes up for the one the lost key had:
    # the cheap count alone would miss it.
    escaped = b'{"packetID":123456,"payload":{"callbackName":9},"a":1,"a":"\\u003a"}'
    assert dup_notes(decoded(escaped)) != []
    clean = b'{"packetID":123456,"payload":{"callbackName":9,"callbackArgs":["a:b","::"]}}'
    assert dup_notes(decoded(clean)) == []
    assert dup_notes(decoded(b'{"sn":"X","packetID":123456,"PUBACK":1}', "outlet")) == []


# Objects written pair by pair, so that a key may repeat: hypothesis draws the pairs.
keys = st.sampled_from(["a", "b", "payload", "callbackName", "x:y", "é", "\\"])
scalars = json_scalars(max_text=6)


def write(node: Any, ensure_ascii: bool, sep: str = "") -> str:
    """``node`` as JSON text, objects pair by pair; ``sep`` after each ',' and ':'."""
    if isinstance(node, tuple):  # an object as its pairs
        inner = f",{sep}".join(
            f"{json.dumps(k, ensure_ascii=ensure_ascii)}:{sep}{write(v, ensure_ascii, sep)}"
            for k, v in node
        )
        return "{" + inner + "}"
    if isinstance(node, list):
        return "[" + f",{sep}".join(write(v, ensure_ascii, sep) for v in node) + "]"
    return json.dumps(node, ensure_ascii=ensure_ascii)


nodes = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.lists(st.tuples(keys, inner), max_size=4).map(tuple)
    ),
    max_leaves=10,
)


def repeats(node: Any) -> bool:
    if isinstance(node, tuple):
        names = [k for k, _ in node]
        return len(names) != len(set(names)) or any(repeats(v) for _, v in node)
    if isinstance(node, list):
        return any(repeats(v) for v in node)
    return False


@settings(max_examples=400, deadline=None)
@given(
    st.lists(st.tuples(keys, nodes), max_size=5).map(tuple),
    st.booleans(),
    st.sampled_from(["", " ", "\n "]),
)
def test_the_warning_comes_exactly_when_a_key_repeats(
    top: tuple[Any, ...], ascii_: bool, sep: str
) -> None:
    raw = write(top, ascii_, sep).encode()
    msg = decoded(raw)
    assert bool(dup_notes(msg)) == repeats(top)
    assert bool(duplicate_keys(raw)) == repeats(top)


def test_a_frame_full_of_duplicates_gets_one_bounded_warning() -> None:
    pairs = ",".join(f'"k{i % 50}":{i}' for i in range(20_000))
    raw = (
        '{"packetID":123456,"payload":{"callbackName":9,"callbackArgs":{' + pairs + "}}}"
    ).encode()
    (text,) = dup_notes(decoded(raw))
    assert len(text) < 1000
    assert text.startswith("duplicate keys payload.callbackArgs.k0 (400 values: 0, 50, 100, …); ")
    assert "; and 45 more." in text
