"""The streaming JSON splitter: TCP chunks split and merge values, WebSocket messages
are one frame each, garbage is reported and the stream recovers (DESIGN 3, Frame).

Over 500 lines because the framer is one state machine: its sections (TCP shapes, garbage,
UTF-8, bounds and close, WebSocket, properties) feed it through the helpers at the top."""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from proxy.core.events import Close, Data, Event, Open, Side
from proxy.core.framing import Frame, Framer, JsonError, parse_json
from tests.strategies import json_scalars


def feed_all(framer: Framer, events: Sequence[Event]) -> list[Frame]:
    frames: list[Frame] = []
    for event in events:
        frames += framer.feed(event)
    return frames


def tcp(
    chunks: Sequence[bytes],
    *,
    close: bool = True,
    max_value_bytes: int = 1 << 20,
    eager_bytes: int = 1 << 16,
    side: Side = "outlet",
    reference: bool = False,
) -> list[Frame]:
    """Frames of one TCP direction fed chunk by chunk; chunk i arrives at t = i + 1,
    the close at t = 100."""
    framer = Framer(max_value_bytes, eager_bytes=eager_bytes, reference=reference)
    events: list[Event] = [Open(0.0, "c1", "tcp", "127.0.0.1:5000", "10.0.0.5:3333")]
    events += [Data(float(i + 1), "c1", side, c) for i, c in enumerate(chunks)]
    if close:
        events.append(Close(100.0, "c1", "outlet"))
    return feed_all(framer, events)


def summary(frames: Sequence[Frame]) -> list[tuple[float, bytes, Any, bool]]:
    return [(f.t, f.raw, f.value, f.error is None) for f in frames]


def raws_and_invalid(frames: Sequence[Frame]) -> tuple[list[bytes], list[int]]:
    """The frames' bytes in order, and the positions of those that are no valid value."""
    return [f.raw for f in frames], [i for i, f in enumerate(frames) if f.error is not None]


def typed(value: Any) -> list[str]:
    """``value`` as a flat list of tokens with every scalar's type explicit, so that
    ``==`` tells 1 from 1.0 and 10**20 from 1e20 (a 65-bit integer parsed as a float
    must not pass); iterative, for values nested deeper than the recursion limit."""
    out: list[str] = []
    todo: list[Any] = [value]
    while todo:
        v = todo.pop()
        if isinstance(v, dict):
            out.append(f"{{{len(v)}")
            for k, item in reversed(v.items()):
                todo += [item, ("key", k)]
        elif isinstance(v, list):
            out.append(f"[{len(v)}")
            todo += reversed(v)
        else:
            out.append(f"{type(v).__name__}:{v!r}")
    return out


def exact(frames: Sequence[Frame]) -> list[tuple[float, bytes, Any, str | None, bool]]:
    return [(f.t, f.raw, typed(f.value), f.error, f.injected) for f in frames]


# --- TCP: the common shapes --------------------------------------------------------


def test_one_object_per_chunk_keeps_exact_bytes_and_metadata() -> None:
    frames = tcp([b'{"packetID":221040,"payload":{"callbackName":20}}\n'], side="app")
    assert len(frames) == 1
    f = frames[0]
    assert (f.t, f.conn, f.side, f.error, f.injected) == (1.0, "c1", "app", None, False)
    assert f.raw == b'{"packetID":221040,"payload":{"callbackName":20}}'
    assert f.value == {"packetID": 221040, "payload": {"callbackName": 20}}


def test_object_split_across_chunks_comes_out_when_complete() -> None:
    framer = Framer()
    assert framer.feed(Data(1.0, "c1", "outlet", b'{"sn":"0003C4')) == []
    assert framer.feed(Data(2.0, "c1", "outlet", b'4076","PUBACK"')) == []
    frames = framer.feed(Data(3.0, "c1", "outlet", b":1}\n"))
    assert summary(frames) == [
        (3.0, b'{"sn":"0003C44076","PUBACK":1}', {"sn": "0003C44076", "PUBACK": 1}, True)
    ]
    assert framer.buffered() == 0


def test_several_objects_in_one_chunk_in_stream_order() -> None:
    frames = tcp([b'{"a":1}\n{"b":2}\n{"c":3}\n'])
    assert summary(frames) == [
        (1.0, b'{"a":1}', {"a": 1}, True),
        (1.0, b'{"b":2}', {"b": 2}, True),
        (1.0, b'{"c":3}', {"c": 3}, True),
    ]


def test_back_to_back_without_delimiter_and_split_mid_next() -> None:
    frames = tcp([b'{"a":1}{"b":[1,2]}{"c"', b':"}{"}'])
    assert summary(frames) == [
        (1.0, b'{"a":1}', {"a": 1}, True),
        (1.0, b'{"b":[1,2]}', {"b": [1, 2]}, True),
        (2.0, b'{"c":"}{"}', {"c": "}{"}, True),
    ]


def test_crlf_tabs_and_spaces_between_values_belong_to_no_frame() -> None:
    frames = tcp([b'\r\n \t{"a":1}\r\n\r\n', b'\t {"b":2} \r', b"\n"])
    assert [f.raw for f in frames] == [b'{"a":1}', b'{"b":2}']
    assert all(f.error is None for f in frames)


def test_whitespace_only_chunks_produce_nothing() -> None:
    assert tcp([b"\n", b"  \r\n", b"\t"]) == []


def test_non_object_values_are_valid_frames() -> None:
    frames = tcp([b'5\n"text" [1, {"x": null}] true\nfalse null -1.5e3\n'])
    assert [(f.raw, f.value) for f in frames] == [
        (b"5", 5),
        (b'"text"', "text"),
        (b'[1, {"x": null}]', [1, {"x": None}]),
        (b"true", True),
        (b"false", False),
        (b"null", None),
        (b"-1.5e3", -1500.0),
    ]
    assert all(f.error is None for f in frames)


def test_number_at_end_of_data_waits_for_the_next_byte() -> None:
    framer = Framer()
    assert framer.feed(Data(1.0, "c1", "outlet", b"12")) == []
    assert framer.feed(Data(2.0, "c1", "outlet", b"34")) == []
    frames = framer.feed(Data(3.0, "c1", "outlet", b" 7"))
    assert summary(frames) == [(3.0, b"1234", 1234, True)]
    frames = framer.feed(Data(4.0, "c1", "outlet", b".5e"))
    assert frames == []
    frames = framer.feed(Data(5.0, "c1", "outlet", b"1{"))
    assert summary(frames) == [(5.0, b"7.5e1", 75.0, True)]


def test_number_at_end_is_completed_by_the_close() -> None:
    frames = tcp([b'{"a":1}5'])
    assert summary(frames) == [(1.0, b'{"a":1}', {"a": 1}, True), (100.0, b"5", 5, True)]


def test_literal_split_across_chunks() -> None:
    frames = tcp([b"tr", b"ue ", b'{"a":fa', b"lse}"])
    assert summary(frames) == [
        (2.0, b"true", True, True),
        (4.0, b'{"a":false}', {"a": False}, True),
    ]


# --- TCP: garbage and recovery ------------------------------------------------------


def test_garbage_then_valid_object() -> None:
    frames = tcp([b'hello {"a":1}\n'])
    assert raws_and_invalid(frames) == ([b"hello", b'{"a":1}'], [0])
    assert frames[0].value is None
    assert frames[0].error == "not JSON: unexpected 'h' at byte 0 (expected a value)"


def test_garbage_position_is_reported_in_bytes_of_the_frame() -> None:
    frames = tcp([b'{"a":1 x}\n{"b":2}'])
    assert frames[0].raw == b'{"a":1 x}'
    assert frames[0].error is not None
    assert "unexpected 'x' at byte 7" in frames[0].error
    assert (frames[1].raw, frames[1].value) == (b'{"b":2}', {"b": 2})


def test_garbage_runs_on_to_the_next_brace_and_comes_out_whole() -> None:
    framer = Framer()
    # Until a '{' (or the close) nothing says where the garbage ends: it is held, so
    # that the frame is the same however the bytes were cut.
    assert framer.feed(Data(1.0, "c1", "outlet", b"\x01\x02 abc")) == []
    assert framer.feed(Data(2.0, "c1", "outlet", b' 12 "x" ')) == []
    assert framer.buffered() == len(b'\x01\x02 abc 12 "x" ')
    frames = framer.feed(Data(3.0, "c1", "outlet", b'ghi{"ok":true}'))
    assert summary(frames) == [
        (3.0, b'\x01\x02 abc 12 "x" ghi', None, False),
        (3.0, b'{"ok":true}', {"ok": True}, True),
    ]
    assert frames[0].error == "not JSON: unexpected '\\x01' at byte 0 (expected a value)"
    assert framer.buffered() == 0
    # The close ends garbage too.
    assert framer.feed(Data(4.0, "c1", "outlet", b" junk ")) == []
    assert summary(framer.feed(Close(5.0, "c1"))) == [(5.0, b"junk", None, False)]


def test_a_word_at_the_end_of_the_data_waits_it_may_go_on() -> None:
    framer = Framer()
    assert framer.feed(Data(1.0, "c1", "outlet", b"NaN")) == []  # NaNnull is one word
    frames = framer.feed(Data(2.0, "c1", "outlet", b'null{"a":1}-1'))  # -1 might be -12...
    assert summary(frames) == [(2.0, b"NaNnull", None, False), (2.0, b'{"a":1}', {"a": 1}, True)]
    assert framer.feed(Data(3.0, "c1", "outlet", b"\n")) == [Frame(3.0, "c1", "outlet", b"-1", -1)]


def test_truncated_object_followed_by_next_object_recovers_it() -> None:
    # A device that restarts mid-write: the cut object is one invalid frame.
    frames = tcp([b'{"sn":"0003C44076","packetID":2', b'\n{"packetID":3}\n'])
    assert summary(frames) == [
        (2.0, b'{"sn":"0003C44076","packetID":2', None, False),
        (2.0, b'{"packetID":3}', {"packetID": 3}, True),
    ]


def test_stray_closing_brackets_and_separators_are_garbage() -> None:
    frames = tcp([b'{"a":1}}]{"b":2},{"c":3}'])
    assert raws_and_invalid(frames) == ([b'{"a":1}', b"}]", b'{"b":2}', b",", b'{"c":3}'], [1, 3])


def test_nan_and_infinity_are_not_json() -> None:
    frames = tcp([b'{"v":NaN}\n{"v":-Infinity}\nInfinity {"ok":1}'])
    assert [f.raw for f in frames] == [
        b'{"v":NaN}',
        b'{"v":-Infinity}',
        b"Infinity",
        b'{"ok":1}',
    ]
    assert [f.error is None for f in frames] == [False, False, False, True]
    assert frames[0].error is not None and "NaN" in frames[0].error


def test_raw_control_character_in_string_is_garbage_and_next_object_survives() -> None:
    frames = tcp([b'{"a":"line\nbreak"}\n{"b":2}\n'])
    assert frames[-1].raw == b'{"b":2}' and frames[-1].error is None
    assert frames[0].error is not None and "'\\n' at byte 10" in frames[0].error
    assert all(f.error is not None for f in frames[:-1])


# --- TCP: UTF-8 ---------------------------------------------------------------------


def test_non_ascii_strings_keep_exact_bytes() -> None:
    data = '{"name":"Küche ☕"}\n{"name":"ßüñ 🌙","n":1}\n'.encode()
    frames = tcp([data])
    assert [(f.raw, f.value) for f in frames] == [
        ('{"name":"Küche ☕"}'.encode(), {"name": "Küche ☕"}),
        ('{"name":"ßüñ 🌙","n":1}'.encode(), {"name": "ßüñ 🌙", "n": 1}),
    ]


def test_multibyte_character_split_across_chunks() -> None:
    data = '{"name":"🌙"}'.encode()
    cut = data.index(b"\xf0") + 2  # in the middle of the 4-byte sequence
    frames = tcp([data[:cut], data[cut:]])
    assert summary(frames) == [(2.0, data, {"name": "🌙"}, True)]


def test_error_offsets_count_bytes_after_non_ascii() -> None:
    frames = tcp(['{"é":"ü" ?}'.encode()])
    assert frames[0].error is not None
    # '{"é":"ü" ' is 11 bytes (é and ü are two bytes each).
    assert "unexpected '?' at byte 11" in frames[0].error


def test_character_split_where_it_is_not_allowed_reads_the_same_as_whole() -> None:
    # 'é' outside a string is not JSON; cut in two it must not pass for invalid UTF-8.
    whole = tcp(['{"a":{},"b":é}{"b":1}'.encode()])
    pieces = tcp([b'{"a":{},"b":\xc3', b'\xa9}{"b":1}'])
    assert [(f.raw, f.error) for f in pieces] == [(f.raw, f.error) for f in whole]
    assert whole[0].error == "not JSON: unexpected 'é' at byte 12 (expected a value)"
    assert (whole[1].value, pieces[1].t) == ({"b": 1}, 2.0)


def test_invalid_utf8_inside_a_value_is_one_invalid_frame() -> None:
    frames = tcp([b'{"name":"K\xfcche"}{"ok":1}\n'])
    assert raws_and_invalid(frames) == ([b'{"name":"K\xfcche"}', b'{"ok":1}'], [0])
    assert frames[0].error == "invalid UTF-8: byte 0xFC at byte 10"
    assert frames[0].value is None


def test_invalid_utf8_between_values_is_garbage() -> None:
    frames = tcp([b'{"a":1}\xff\xfe\n{"b":2}'])
    assert raws_and_invalid(frames) == ([b'{"a":1}', b"\xff\xfe", b'{"b":2}'], [1])
    assert frames[1].error == "invalid UTF-8: byte 0xFF at byte 0"


# --- TCP: bounds and close ----------------------------------------------------------


def test_value_that_never_ends_is_cut_at_the_limit_without_growing() -> None:
    framer = Framer(max_value_bytes=64)
    frames = framer.feed(Data(1.0, "c1", "outlet", b'{"log":"'))
    high_water = 0
    for i in range(2, 2000):
        frames += framer.feed(Data(float(i), "c1", "outlet", b"x" * 10))
        high_water = max(high_water, framer.buffered())
    assert high_water <= 64 + 10
    cut = [f for f in frames if f.error == "value longer than 64 bytes without ending"]
    assert len(cut) == 1 and cut[0].raw.startswith(b'{"log":"xxx') and len(cut[0].raw) <= 74
    # The rest is garbage until the next '{', then the stream is back in step.
    frames += framer.feed(Data(3000.0, "c1", "outlet", b'xx"}\n{"packetID":7}\n'))
    assert (frames[-1].t, frames[-1].raw, frames[-1].value) == (
        3000.0,
        b'{"packetID":7}',
        {"packetID": 7},
    )
    assert framer.buffered() == 0
    # Nothing was dropped: every byte is in some frame, apart from whitespace.
    assert sum(len(f.raw) for f in frames) == len(b'{"log":"') + 1998 * 10 + len(
        b'xx"}{"packetID":7}'
    )


def test_garbage_without_a_brace_is_bounded_too() -> None:
    framer = Framer(max_value_bytes=100)
    frames: list[Frame] = []
    for i in range(1000):
        frames += framer.feed(Data(float(i), "c1", "outlet", b"garbage "))
        assert framer.buffered() <= 100 + 8
    assert frames and all(f.error is not None for f in frames)
    assert feed_all(framer, [Data(2000.0, "c1", "outlet", b'{"a":1}')])[-1].value == {"a": 1}


def test_large_value_within_the_limit_is_one_frame_at_the_right_time() -> None:
    value = {"items": [{"k": i, "s": 'q"\\' * (i % 5)} for i in range(3000)]}
    data = json.dumps(value).encode() + b"\n"
    chunks = [data[i : i + 512] for i in range(0, len(data), 512)]
    frames = tcp(chunks, eager_bytes=1024)
    assert summary(frames) == [(float(len(chunks)), data.strip(), value, True)]


def test_close_in_the_middle_of_a_value() -> None:
    frames = tcp([b'{"a":1}\n{"b":[1,'])
    assert summary(frames) == [
        (1.0, b'{"a":1}', {"a": 1}, True),
        (100.0, b'{"b":[1,', None, False),
    ]
    assert frames[1].error == "connection closed in the middle of a value"


def test_close_flushes_both_sides_and_forgets_the_connection() -> None:
    framer = Framer()
    events: list[Event] = [Data(1.0, "c1", "app", b"12"), Data(1.0, "c1", "outlet", b'{"x":')]
    assert feed_all(framer, events) == []
    frames = framer.feed(Close(5.0, "c1", "app"))
    assert [(f.side, f.raw, f.value, f.error) for f in frames] == [
        ("app", b"12", 12, None),
        ("outlet", b'{"x":', None, "connection closed in the middle of a value"),
    ]
    assert framer.buffered() == 0
    assert framer.feed(Close(6.0, "c1")) == []
    # A later connection with the same id starts from a clean state: the old
    # '{"x":' does not join the new bytes.
    frames = framer.feed(Data(7.0, "c1", "outlet", b'1}{"y":2}'))
    assert [(f.raw, f.value, f.error is None) for f in frames] == [
        (b"1", 1, True),
        (b"}", None, False),
        (b'{"y":2}', {"y": 2}, True),
    ]


def test_deeply_nested_value_is_invalid_and_the_stream_recovers() -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    frames = tcp([deep[:70_000], deep[70_000:] + b'\n{"a":1}\n'])
    assert [(f.raw == deep, f.error is None) for f in frames] == [(True, False), (False, True)]
    assert frames[0].error == "not JSON: nested too deeply to decode"
    assert frames[1].value == {"a": 1}


def test_deeply_nested_value_after_other_values_in_the_same_chunk() -> None:
    deep = b"[" * 50_000 + b"]" * 50_000
    deeper = b"[" * 60_000 + b"]" * 60_000
    frames = tcp(['{"é":1} 5 '.encode() + deep + deeper + b'{"a":1}'])
    assert raws_and_invalid(frames) == (
        ['{"é":1}'.encode(), b"5", deep, deeper, b'{"a":1}'],
        [2, 3],
    )


def test_data_without_open_is_treated_as_tcp() -> None:
    framer = Framer()
    frames = framer.feed(Data(1.0, "c9", "app", b'{"a":1}{"b":2}'))
    assert [f.value for f in frames] == [{"a": 1}, {"b": 2}]


def test_injected_flag_is_copied_from_the_event() -> None:
    framer = Framer()
    frames = framer.feed(Data(1.0, "c1", "app", b'{"inj":1}\n', injected=True))
    frames += framer.feed(Data(2.0, "c1", "app", b'{"app":1}\n{"a'))
    frames += framer.feed(Data(3.0, "c1", "app", b'pp":2}{"inj":2}', injected=True))
    assert [(f.value, f.injected) for f in frames] == [
        ({"inj": 1}, True),
        ({"app": 1}, False),
        ({"app": 2}, True),  # completed by an injected event
        ({"inj": 2}, True),
    ]


def test_injected_carry_covers_only_the_bytes_it_brought() -> None:
    framer = Framer()
    frames = framer.feed(Data(1.0, "c1", "app", b'{"inj":', injected=True))
    frames += framer.feed(Data(2.0, "c1", "app", b'1}\n{"app":1}{"app":2}\n{"app"'))
    frames += framer.feed(Data(3.0, "c1", "app", b":3}"))
    assert [(f.value, f.injected) for f in frames] == [
        ({"inj": 1}, True),
        ({"app": 1}, False),
        ({"app": 2}, False),
        ({"app": 3}, False),
    ]


def test_error_in_a_large_unfinished_value_is_found_before_the_limit() -> None:
    # Past eager_bytes the value is re-parsed only when it may have ended or has
    # doubled; a cut-off value followed by many objects must still let them out.
    framer = Framer(eager_bytes=256)
    frames = framer.feed(Data(0.0, "c1", "outlet", b'{"log":"' + b"x" * 300 + b'",'))
    for i in range(200):
        frames += framer.feed(Data(float(i + 1), "c1", "outlet", b'\n{"n":%d}' % i))
    assert [f.value for f in frames if f.error is None] == [{"n": i} for i in range(200)]
    assert frames[0].raw == b'{"log":"' + b"x" * 300 + b'",'
    assert framer.buffered() < 100


def test_connections_and_sides_are_kept_apart() -> None:
    framer = Framer()
    events: list[Event] = [
        Open(0.0, "c1", "tcp", "a", "o"),
        Open(0.0, "c2", "tcp", "a", "o"),
        Data(1.0, "c1", "app", b'{"c1":"app'),
        Data(2.0, "c1", "outlet", b'{"c1":"out'),
        Data(3.0, "c2", "app", b'{"c2":"app'),
        Data(4.0, "c2", "app", b'"}'),
        Data(5.0, "c1", "outlet", b'let"}'),
        Data(6.0, "c1", "app", b'"}'),
    ]
    frames = feed_all(framer, events)
    assert [(f.t, f.conn, f.side, f.value) for f in frames] == [
        (4.0, "c2", "app", {"c2": "app"}),
        (5.0, "c1", "outlet", {"c1": "outlet"}),
        (6.0, "c1", "app", {"c1": "app"}),
    ]


# --- WebSocket ------------------------------------------------------------------------


def ws(*messages: bytes, text: bool = True) -> list[Frame]:
    framer = Framer()
    events: list[Event] = [Open(0.0, "w1", "ws", "127.0.0.1:5001", "10.0.0.5:80")]
    events += [Data(float(i + 1), "w1", "outlet", m, text) for i, m in enumerate(messages)]
    events.append(Close(100.0, "w1"))
    return feed_all(framer, events)


def test_websocket_message_is_one_frame() -> None:
    frames = ws(b'{"a":1}', b' \r\n{"b":2}\n', b"[1,2]", b"7")
    assert summary(frames) == [
        (1.0, b'{"a":1}', {"a": 1}, True),
        (2.0, b' \r\n{"b":2}\n', {"b": 2}, True),
        (3.0, b"[1,2]", [1, 2], True),
        (4.0, b"7", 7, True),
    ]


def test_websocket_message_is_never_split_or_joined() -> None:
    frames = ws(b'{"a":1}{"b":2}', b'{"a":', b"1}")
    assert [(f.raw, f.error) for f in frames] == [
        (b'{"a":1}{"b":2}', "not JSON: unexpected '{' at byte 7 (extra data after the value)"),
        (b'{"a":', "not JSON: the message ends in the middle of a value"),
        (b"1}", "not JSON: unexpected '}' at byte 1 (extra data after the value)"),
    ]
    assert all(f.value is None for f in frames)


def test_websocket_empty_garbage_and_bad_utf8() -> None:
    frames = ws(b"", b"  \n", b"hello", b'{"a":"\xc3("}', b"NaN")
    assert [f.error for f in frames] == [
        "empty message",
        "empty message",
        "not JSON: unexpected 'h' at byte 0 (expected a value)",
        "invalid UTF-8: byte 0xC3 at byte 6",
        "not JSON: NaN is not a JSON value",
    ]


def test_websocket_binary_message_with_json_is_parsed() -> None:
    frames = ws(b'{"a":1}', text=False)
    assert frames[0].value == {"a": 1}


def test_tcp_and_websocket_connections_side_by_side() -> None:
    framer = Framer()
    frames = feed_all(
        framer,
        [
            Open(0.0, "t", "tcp", "a", "o"),
            Open(0.0, "w", "ws", "a", "o"),
            Data(1.0, "t", "app", b'{"t":'),
            Data(2.0, "w", "app", b'{"w":'),
            Data(3.0, "t", "app", b"1}"),
        ],
    )
    assert [(f.conn, f.raw, f.error is None) for f in frames] == [
        ("w", b'{"w":', False),
        ("t", b'{"t":1}', True),
    ]


# --- properties -----------------------------------------------------------------------

json_values = st.recursive(
    json_scalars(max_text=12),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)
whitespace = st.text(alphabet=" \t\r\n", max_size=3)


@st.composite
def value_streams(draw: st.DrawFn) -> tuple[bytes, list[tuple[bytes, Any]]]:
    """Valid JSON values (objects mostly) separated by arbitrary whitespace, each
    dumped in a random style, and what the splitter must cut out of them."""
    values = draw(
        st.lists(st.dictionaries(st.text(max_size=6), json_values) | json_values, max_size=8)
    )
    out = bytearray(draw(whitespace).encode())
    expected: list[tuple[bytes, Any]] = []
    prev_scalar = False
    for value in values:
        raw = json.dumps(
            value,
            ensure_ascii=draw(st.booleans()),
            separators=draw(st.sampled_from([(",", ":"), (", ", ": ")])),
        ).encode()
        scalar = raw[:1] not in (b"{", b"[", b'"')
        sep = draw(whitespace)
        if prev_scalar and scalar and not sep:
            sep = " "  # two numbers need something between them
        out += sep.encode() + raw
        expected.append((raw, json.loads(raw)))
        prev_scalar = raw[-1:] not in (b"}", b"]", b'"')
    out += draw(whitespace).encode()
    return bytes(out), expected


def cut(data: bytes, points: list[int]) -> list[bytes]:
    edges = [0, *sorted({p % (len(data) + 1) for p in points}), len(data)]
    return [data[a:b] for a, b in itertools.pairwise(edges) if b > a]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    value_streams(), st.lists(st.integers(0, 10_000), max_size=30), st.sampled_from([0, 1 << 16])
)
def test_every_chunking_gives_the_same_frames(
    stream: tuple[bytes, list[tuple[bytes, Any]]], points: list[int], eager: int
) -> None:
    data, expected = stream
    whole = tcp([data], eager_bytes=eager)
    chunks = cut(data, points)
    pieces = tcp(chunks, eager_bytes=eager)
    assert [(f.raw, typed(f.value), f.error) for f in pieces] == [
        (r, typed(v), None) for r, v in expected
    ]
    assert [(f.raw, typed(f.value)) for f in whole] == [(f.raw, typed(f.value)) for f in pieces]
    # t is the chunk that completed each value: the one holding its last byte, or for
    # a number/literal the one holding the byte after it (or the close).
    ends = []
    offset = 0
    for raw, _ in expected:
        start = data.index(raw, offset)
        offset = start + len(raw)
        scalar = raw[-1:] not in (b"}", b"]", b'"')
        ends.append(offset if scalar else offset - 1)
    bounds = []
    acc = 0
    for c in chunks:
        acc += len(c)
        bounds.append(acc)
    expected_t = [next((float(i + 1) for i, b in enumerate(bounds) if b > e), 100.0) for e in ends]
    assert [f.t for f in pieces] == expected_t


@settings(max_examples=100, deadline=None)
@given(value_streams(), st.lists(st.integers(0, 10_000), max_size=20))
def test_raw_plus_whitespace_reproduces_the_input(
    stream: tuple[bytes, list[tuple[bytes, Any]]], points: list[int]
) -> None:
    data, _ = stream
    frames = tcp(cut(data, points))
    assert_reassembles(data, frames)


def assert_reassembles(data: bytes, frames: Sequence[Frame]) -> None:
    """The frames' raw bytes, in order, with only whitespace between: the input."""
    pos = 0
    for f in frames:
        gap_end = data.index(f.raw, pos) if f.raw else pos
        assert data[pos:gap_end].strip(b" \t\r\n") == b"", (data[pos:gap_end], f)
        pos = gap_end + len(f.raw)
    assert data[pos:].strip(b" \t\r\n") == b""


objects = st.dictionaries(st.text(max_size=5), json_values, max_size=3).map(
    lambda d: json.dumps(d, ensure_ascii=False).encode()
)
# Garbage the resynchronisation rule promises to survive: no '{' (the resync point),
# no '"' or '[' (they could open a string or array that swallows the next object).
garbage = st.binary(min_size=1, max_size=12).map(
    lambda b: b.replace(b"{", b"").replace(b'"', b"").replace(b"[", b"") or b"?"
)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.none() | garbage, objects, whitespace), min_size=1, max_size=6),
    st.lists(st.integers(0, 10_000), max_size=20),
)
def test_garbage_between_objects_never_loses_one(
    parts: list[tuple[bytes | None, bytes, str]], points: list[int]
) -> None:
    data = b"".join((g or b"") + obj + ws.encode() for g, obj, ws in parts)
    frames = tcp(cut(data, points))
    wanted = [obj for _, obj, _ in parts]
    got = [f.raw for f in frames if f.error is None and f.raw.startswith(b"{")]
    assert got == wanted
    assert_reassembles(data, frames)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.binary(max_size=20) | objects | st.sampled_from([b"{", b"[", b'"', b"\\"])),
    st.lists(st.integers(0, 10_000), max_size=20),
    st.integers(1, 64),
)
def test_any_bytes_never_raise_and_lose_nothing(
    parts: list[bytes], points: list[int], limit: int
) -> None:
    data = b"".join(parts)
    framer = Framer(max_value_bytes=limit, eager_bytes=8)
    frames: list[Frame] = []
    for i, chunk in enumerate(cut(data, points)):
        frames += framer.feed(Data(float(i), "c1", "outlet", chunk))
        assert framer.buffered() <= limit + len(chunk)
    frames += framer.feed(Close(1e9, "c1"))
    assert_reassembles(data, frames)
    for f in frames:
        if f.error is not None:
            assert f.value is None and f.error
        else:
            assert typed(json.loads(f.raw)) == typed(f.value)


fragments = st.one_of(
    objects,
    st.binary(max_size=6),
    st.sampled_from(
        [
            *(b"{", b"}", b"[", b"]", b'"', b"\\", b":", b",", b" ", b"\n", b"\r\n", b"\t"),
            *(
                b'{"k":',
                b"[1,",
                b"tr",
                b"ue",
                b"nul",
                b"-",
                b"1",
                b"0.",
                b"5e",
                b"+3",
                b"NaN",
                b"-Inf",
                b"inity",
            ),
            *(b"\\u00", b"e9", "é".encode(), "🌙".encode(), b"\xc3", b"\xa9", b"\xf0\x9f", b"\xff"),
        ]
    ),
)


@settings(max_examples=500, deadline=None)
@given(
    st.lists(fragments | st.binary(max_size=30), max_size=25),
    st.lists(st.integers(0, 10_000), max_size=20),
    st.sampled_from([0, 1 << 16]),
)
@example([b'NaNnull{"a":1}'], list(range(15)), 1 << 16)
@example([b"Infinity", b"x {", b'"k":1}'], [8, 9], 0)
def test_any_bytes_give_the_same_frames_however_chunked(
    parts: list[bytes], points: list[int], eager: int
) -> None:
    # Below max_value_bytes the chunking changes only when frames come out (t): the
    # frames themselves (bytes, validity, value, reason) are the same.
    data = b"".join(parts)
    whole = tcp([data], eager_bytes=eager)
    pieces = tcp(cut(data, points), eager_bytes=eager)
    assert [(f.raw, typed(f.value), f.error) for f in pieces] == [
        (f.raw, typed(f.value), f.error) for f in whole
    ]
    byte_by_byte = tcp([data[i : i + 1] for i in range(len(data))], eager_bytes=eager)
    assert [(f.raw, typed(f.value), f.error) for f in byte_by_byte] == [
        (f.raw, typed(f.value), f.error) for f in whole
    ]
    assert_reassembles(data, whole)


_WS = b" \t\r\n"


@pytest.mark.parametrize("bad", [0, -1])
def test_max_value_bytes_must_be_positive(bad: int) -> None:
    with pytest.raises(ValueError, match="max_value_bytes"):
        Framer(max_value_bytes=bad)


def test_integers_beyond_64_bits_stay_exact() -> None:
    """The fast parser turns them into floats; the framer must not."""
    big = 123456789012345678901234567890
    raw = b'{"packetID":%d,"payload":{"callbackName":9}}' % big
    tcp = Framer()
    tcp.feed(Open(0.0, "c1", "tcp", "a:1", "b:2"))
    (frame,) = tcp.feed(Data(0.1, "c1", "app", raw + b"\n"))
    assert frame.value["packetID"] == big and type(frame.value["packetID"]) is int
    ws = Framer()
    ws.feed(Open(0.0, "c2", "ws", "a:1", "b:2"))
    (frame,) = ws.feed(Data(0.1, "c2", "app", raw))
    assert frame.value["packetID"] == big and frame.raw == raw


# Values where orjson and the standard library disagree or refuse: each must come out
# exactly as the reference (stdlib-only) framer cuts and parses it.
tricky = st.sampled_from(
    [
        b"18446744073709551615",
        b"18446744073709551616",
        b"-9223372036854775809",
        b'{"big":123456789012345678901234567890}',
        b"[1e400, -1e400, 1E-400, -0.0, -0, 0.1]",
        b'{"s":"\\ud800 lone"}',
        b'"\\udc80"',
        b'{"dup":1,"dup":2.5}',
        b'{"nan":NaN}',
        b"[Infinity]",
        b'{"ctl":"a\tb"}',
        b'{"del":"a\x7fb"}',
        b"[" * 40 + b"]" * 40,
        b"[" * 1100 + b"]" * 1100,
        b'{"x":[1,2}',
        b'{"a":1}}',
        b'{"long":' + b"1" * 4400 + b"}",
        b"-" + b"2" * 4400,
    ]
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(fragments | tricky, max_size=20) | value_streams().map(lambda s: [s[0]]),
    st.lists(st.integers(0, 10_000), max_size=20),
    st.sampled_from([0, 1 << 16]),
    st.lists(st.booleans(), max_size=8),
)
@example([b'{"b":[2]}{"c":{}}\n'], [3], 1 << 16, [True, False])
def test_fast_paths_cut_and_parse_exactly_like_the_reference(
    parts: list[bytes], points: list[int], eager: int, injected: list[bool]
) -> None:
    data = b"".join(parts)
    for chunks in ([data], cut(data, points)):
        frames = {}
        for reference in (False, True):
            framer = Framer(eager_bytes=eager, reference=reference)
            events: list[Event] = [Open(0.0, "c1", "tcp", "a:1", "b:2")]
            for i, chunk in enumerate(chunks):
                inj = bool(injected) and injected[i % len(injected)]
                events.append(Data(float(i + 1), "c1", "outlet", chunk, injected=inj))
            events.append(Close(100.0, "c1", "outlet"))
            frames[reference] = exact(feed_all(framer, events))
        assert frames[False] == frames[True]
    for message in parts:
        frames = {}
        for reference in (False, True):
            framer = Framer(reference=reference)
            framer.feed(Open(0.0, "w", "ws", "a:1", "b:2"))
            frames[reference] = exact(framer.feed(Data(1.0, "w", "app", message)))
        assert frames[False] == frames[True]


def test_a_number_too_large_for_a_double_is_an_invalid_frame() -> None:
    """1e999 would become Infinity, which no JSON output can carry."""
    raw = b'{"payload":{"callbackName":9,"callbackArgs":[1e999,0]}}'
    for transport in ("tcp", "ws"):
        framer = Framer()
        framer.feed(Open(0.0, "c1", transport, "a:1", "b:2"))
        frames = framer.feed(Data(0.1, "c1", "outlet", raw + b"\n"))
        frames += framer.feed(Close(0.2, "c1", "outlet"))
        assert [f.error for f in frames] == ["not JSON: 1e999 is too large for a number"]
        assert frames[0].raw.strip() == raw


LONG = b"9" * 4301  # one digit more than int() converts by default


@pytest.mark.parametrize(
    "raw",
    [
        b'{"a":' + LONG + b"}",
        b"[" + b"-" + LONG + b",1]",
        LONG,
        b'{"a":' + LONG + b',"b":NaN}',
    ],
)
def test_an_integer_longer_than_int_converts_is_an_invalid_frame_however_chunked(
    raw: bytes,
) -> None:
    """int() raised from inside the scanner, out of feed(): every reader died on it."""
    data = raw + b'\n{"after":1}\n'
    for chunks in ([data], [data[i : i + 1000] for i in range(0, len(data), 1000)]):
        frames = tcp(chunks)
        assert [(f.raw, f.value, f.error is None) for f in frames] == [
            (raw, None, False),
            (b'{"after":1}', {"after": 1}, True),
        ]
        assert frames[0].error == (
            "not decoded: an integer of 4301 digits, more than the 4300 Python converts"
        )
    ws = Framer()
    ws.feed(Open(0.0, "w", "ws", "a:1", "b:2"))
    (frame,) = ws.feed(Data(1.0, "w", "app", raw))
    assert frame.error is not None and "4301 digits" in frame.error
    with pytest.raises(JsonError, match="4301 digits"):
        parse_json(raw)


def test_parse_json_refuses_what_a_frame_cannot_hold_with_a_reason() -> None:
    assert parse_json(b' {"a":[1,2.5,"\xc3\xa9"]}\n') == {"a": [1, 2.5, "é"]}
    assert parse_json("123456789012345678901234567890") == 123456789012345678901234567890
    for bad, why in [
        (b'{"a":NaN}', "NaN is not a JSON value"),
        (b"[1e999]", "too large for a number"),
        (b'"\xff"', "invalid UTF-8"),
        (b"[" * 100_000, "nested too deeply"),
        (b'{"a":1} {"b":2}', "extra data"),
        (b"", "empty message"),
    ]:
        with pytest.raises(JsonError, match=why):
            parse_json(bad)
