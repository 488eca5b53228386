"""Trace JSONL (DESIGN 4.1): the contract's own example, writing rules, bad lines."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import pytest

from proxy.core.events import Close, Data, Event, Open
from proxy.store.records import SourceError
from proxy.store.trace import TRACE_KEY, TraceWriter, read_trace, write_trace

# DESIGN 4.1's example, with a real base64 payload where the document abbreviates one.
OUTLET_BYTES = b'{"sn":"11B27540076","PUBACK":1}\n'
EXAMPLE = (
    '{"t": 0.0,  "conn": "c1", "event": "open", "transport": "tcp", '
    '"app": "127.0.0.1:50122", "outlet": "10.0.0.5:3333"}\n'
    '{"t": 0.01, "conn": "c1", "event": "data", "from": "app", '
    '"text": "{\\"packetID\\":221040,\\"payload\\":{\\"callbackName\\":20}}\\n"}\n'
    '{"t": 0.05, "conn": "c1", "event": "data", "from": "outlet", '
    f'"b64": "{base64.b64encode(OUTLET_BYTES).decode()}"}}\n'
    '{"t": 9.0,  "conn": "c1", "event": "close", "by": "outlet"}\n'
)
EXAMPLE_EVENTS: list[Event] = [
    Open(0.0, "c1", "tcp", "127.0.0.1:50122", "10.0.0.5:3333"),
    Data(0.01, "c1", "app", b'{"packetID":221040,"payload":{"callbackName":20}}\n', text=True),
    Data(0.05, "c1", "outlet", OUTLET_BYTES, text=False),
    Close(9.0, "c1", "outlet"),
]


def load(path: Path) -> tuple[dict[str, object], list[Event], list[str]]:
    with read_trace(path) as loaded:
        events = list(loaded.events)
    return loaded.meta, events, [str(p) for p in loaded.problems]


def lines_of(events: list[Event], meta: dict[str, object] | None = None) -> list[dict[str, object]]:
    out = io.StringIO()
    write_trace(out, meta, events)
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_reads_the_design_example_without_a_header(tmp_path: Path) -> None:
    path = tmp_path / "example.jsonl"
    path.write_text(EXAMPLE)
    meta, events, problems = load(path)
    assert (meta, events, problems) == ({}, EXAMPLE_EVENTS, [])


def test_writes_the_design_example_field_for_field() -> None:
    written = lines_of(EXAMPLE_EVENTS)
    assert written == [json.loads(line) for line in EXAMPLE.splitlines()]
    assert list(written[0]) == ["t", "conn", "event", "transport", "app", "outlet"]


def test_header_line_carries_metadata(tmp_path: Path) -> None:
    path = tmp_path / "h.jsonl"
    write_trace(path, {"outlet": "10.0.0.5", "created": 12.5, TRACE_KEY: 42}, EXAMPLE_EVENTS)
    first = json.loads(path.read_text().splitlines()[0])
    assert first == {TRACE_KEY: 1, "outlet": "10.0.0.5", "created": 12.5}
    meta, events, problems = load(path)
    assert meta == {"outlet": "10.0.0.5", "created": 12.5}
    assert events == EXAMPLE_EVENTS and problems == []


def test_no_header_when_meta_is_none() -> None:
    assert [line["event"] for line in lines_of(EXAMPLE_EVENTS, None)] == [
        "open",
        "data",
        "data",
        "close",
    ]


def test_text_only_for_text_chunks_that_are_utf8() -> None:
    events: list[Event] = [
        Data(1.0, "c", "app", "é😀\n".encode(), text=True),
        Data(2.0, "c", "app", b'{"valid": "utf-8"}', text=False),  # a binary WS message
        Data(3.0, "c", "outlet", b"\xff\xfe half", text=True),  # mislabelled: bytes win
        Data(4.0, "c", "outlet", b"", text=True),
    ]
    written = lines_of(events)
    assert written[0]["text"] == "é😀\n" and "b64" not in written[0]
    assert base64.b64decode(str(written[1]["b64"])) == b'{"valid": "utf-8"}'
    assert base64.b64decode(str(written[2]["b64"])) == b"\xff\xfe half"
    assert written[3]["text"] == "" and "b64" not in written[3]


def test_unicode_is_written_as_utf8_not_escapes(tmp_path: Path) -> None:
    path = tmp_path / "u.jsonl"
    write_trace(path, None, [Data(1.0, "ç", "app", "温度\u2028".encode())])
    raw = path.read_bytes()
    assert "温度".encode() in raw and raw.count(b"\n") == 1
    assert load(path)[1] == [Data(1.0, "ç", "app", "温度\u2028".encode())]


def test_injected_only_when_true_and_error_only_when_present() -> None:
    written = lines_of(
        [
            Data(1.0, "c", "app", b"x", injected=True),
            Data(2.0, "c", "app", b"y"),
            Close(3.0, "c", None),
            Close(4.0, "d", "proxy", "timeout"),
        ]
    )
    assert written[0]["injected"] is True
    assert "injected" not in written[1]
    assert written[2] == {"t": 3.0, "conn": "c", "event": "close", "by": None}
    assert written[3] == {
        "t": 4.0,
        "conn": "d",
        "event": "close",
        "by": "proxy",
        "error": "timeout",
    }


def test_unknown_keys_are_ignored_and_optional_ones_default(tmp_path: Path) -> None:
    path = tmp_path / "extra.jsonl"
    path.write_text(
        '{"invisproxy_trace": 1, "tool": "someone else"}\n'
        '{"t": 1, "conn": "c", "event": "data", "from": "app", "text": "x", "colour": "red"}\n'
        '{"t": 2, "conn": "c", "event": "close", "why": "bored"}\n'
    )
    meta, events, problems = load(path)
    assert meta == {"tool": "someone else"}
    assert events == [Data(1.0, "c", "app", b"x"), Close(2.0, "c", None)]
    assert isinstance(events[0].t, float) and problems == []


def test_bad_lines_are_reported_with_their_number_and_nothing_else_is_lost(
    tmp_path: Path,
) -> None:
    good = '{"t": %s, "conn": "c", "event": "data", "from": "app", "text": "ok"}\n'
    bad = [
        "this is not json\n",
        '{"t": 1, "conn": "c", "event": "data", "from": "app"}\n',
        '{"t": 1, "conn": "c", "event": "data", "from": "app", "text": "a", "b64": "YQ=="}\n',
        '{"t": 1, "conn": "c", "event": "data", "from": "app", "b64": "not base64!"}\n',
        '{"t": 1, "conn": "c", "event": "data", "from": "router", "text": "a"}\n',
        '{"t": 1, "conn": "c", "event": "open", "transport": "udp", "app": "a", "outlet": "o"}\n',
        '{"t": "soon", "conn": "c", "event": "close"}\n',
        '{"t": 1e999, "conn": "c", "event": "close"}\n',
        '{"t": 1, "conn": 7, "event": "close"}\n',
        '{"t": 1, "conn": "c", "event": "close", "by": "gremlin"}\n',
        '{"t": 1, "conn": "c", "event": "explode"}\n',
        '{"t": 1, "conn": "c", "event": "data", "from": "app", "text": "\\ud800"}\n',
        "[1, 2, 3]\n",
    ]
    content = good % 0
    for i, line in enumerate(bad):
        content += line + good % (i + 1)
    path = tmp_path / "bad.jsonl"
    path.write_bytes(content.encode() + b'{"t": 99, "conn": "\xff"}\n' + (good % 100).encode())
    _, events, problems = load(path)
    assert [e.t for e in events] == [float(i) for i in range(len(bad) + 1)] + [100.0]
    assert len(problems) == len(bad) + 1
    for n, problem in enumerate(problems):
        assert problem.startswith(f"line {2 * n + 2}: "), problem
        assert problem.endswith("line skipped"), problem
    assert "not JSON" in problems[0]
    assert "needs 'text' or 'b64'" in problems[1]
    assert "both 'text' and 'b64'" in problems[2]
    assert "not valid base64" in problems[3]
    assert "field 'from' should be 'app' or 'outlet', not 'router'" in problems[4]
    assert "'transport'" in problems[5]
    assert "field 't' should be a number of seconds, not 'soon'" in problems[6]
    assert "finite" in problems[7]
    assert "field 'conn' should be a string, not 7" in problems[8]
    assert "'by'" in problems[9]
    assert "unknown event type 'explode'" in problems[10]
    assert "unpaired surrogate" in problems[11]
    assert "expected an event object" in problems[12]
    assert "not JSON" in problems[13]


def test_decreasing_time_is_reported_and_the_event_kept(tmp_path: Path) -> None:
    path = tmp_path / "order.jsonl"
    events = [Close(t, "c", None) for t in (1.0, 2.0, 1.5, 3.0, 3.0)]
    write_trace(path, {}, events)
    _, got, problems = load(path)
    assert got == events
    assert problems == ["line 4: time goes backwards (1.5 after 2.0); event kept"]


def test_blank_lines_are_fine(tmp_path: Path) -> None:
    path = tmp_path / "blank.jsonl"
    path.write_text("\n  \n" + EXAMPLE.replace("\n", "\n\n") + "\r\n")
    assert load(path) == ({}, EXAMPLE_EVENTS, [])


def test_events_stream_problems_fill_in_as_they_are_read(tmp_path: Path) -> None:
    path = tmp_path / "lazy.jsonl"
    path.write_text(EXAMPLE + "garbage\n")
    with read_trace(path) as loaded:
        assert next(loaded.events) == EXAMPLE_EVENTS[0]
        assert loaded.problems == []
        assert list(loaded.events) == EXAMPLE_EVENTS[1:]
        assert [str(p) for p in loaded.problems] == [
            "line 5: not JSON (Expecting value: line 1 column 1 (char 0)); line skipped"
        ]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is empty"),
        (b"\n\n   \n", "is blank"),
        (b"hello\n", "line 1 is not JSON"),
        (b'{"name": "package.json"}\n', "line 1 is neither a trace header"),
        (b'"just a string"\n', "line 1 is neither a trace header"),
        (b'{"invisproxy_trace": 2}\n', "trace format version 2 is newer than this invisproxy"),
        (b'{"invisproxy_trace": "1"}\n', "bad version '1'"),
        (b'{"invisproxy_trace": 0}\n', "bad version 0"),
    ],
)
def test_files_that_cannot_be_traces_are_refused(
    tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "x.jsonl"
    path.write_bytes(content)
    with pytest.raises(SourceError, match=message):
        read_trace(path)


def test_header_only_trace_has_no_events(tmp_path: Path) -> None:
    path = tmp_path / "h.jsonl"
    path.write_text('{"invisproxy_trace": 1, "note": "quiet day"}\n')
    assert load(path) == ({"note": "quiet day"}, [], [])


def test_writer_refuses_to_overwrite_and_counts(tmp_path: Path) -> None:
    path = tmp_path / "w.jsonl"
    with TraceWriter(path, {}) as writer:
        for event in EXAMPLE_EVENTS:
            writer.write(event)
    assert writer.count == 4
    with pytest.raises(FileExistsError):
        TraceWriter(path, {})
    assert load(path)[1] == EXAMPLE_EVENTS
    assert write_trace(path, None, EXAMPLE_EVENTS[:1], overwrite=True) == 1
    assert load(path)[1] == EXAMPLE_EVENTS[:1]


def test_time_is_written_so_it_reads_back_exactly(tmp_path: Path) -> None:
    times = [0.1 + 0.2, 1 / 3, 1716200000.123456, 5e-324]
    path = tmp_path / "t.jsonl"
    write_trace(path, None, [Close(t, "c", None) for t in sorted(times)])
    assert [e.t.hex() for e in load(path)[1]] == [t.hex() for t in sorted(times)]


def test_writer_refuses_non_finite_time() -> None:
    with pytest.raises(ValueError):
        write_trace(io.StringIO(), None, [Close(float("nan"), "c", None)])


# --- times out of range (issue 8 item 7) ------------------------------------------------

ABSURD_TIMES = [
    ("1e20", "out of range: 1e+20"),
    ("1.99e139", "out of range: 1.99e+139"),
    ("-0.5", "out of range: -0.5"),
    ("32503680000", "out of range: 32503680000"),
    ("NaN", "finite number, not nan"),
    ("-Infinity", "finite number, not -inf"),
    ("1" + "0" * 400, "out of range: 1000000000000000000000000000000000000..."),
    ("true", "number of seconds, not True"),
    ('"12:00"', "number of seconds, not '12:00'"),
    ("null", "number of seconds, not None"),
]


@pytest.mark.parametrize(("t", "why"), ABSURD_TIMES)
def test_a_time_no_clock_can_show_is_reported_with_its_line_and_skipped(
    tmp_path: Path, t: str, why: str
) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text(
        '{"t": 1.0, "conn": "c", "event": "close"}\n'
        f'{{"t": {t}, "conn": "c", "event": "data", "from": "app", "text": "x"}}\n'
        '{"t": 2.0, "conn": "c", "event": "close"}\n'
    )
    _, events, problems = load(path)
    assert events == [Close(1.0, "c", None), Close(2.0, "c", None)]
    assert len(problems) == 1 and problems[0].startswith("line 2: field 't' ")
    assert why in problems[0] and problems[0].endswith("; line skipped")


def test_the_edges_of_the_time_range_are_read(tmp_path: Path) -> None:
    path = tmp_path / "edges.jsonl"
    top = 32503679999.999996  # the last float before the year 3000
    path.write_text(
        '{"t": 0, "conn": "c", "event": "close"}\n'
        f'{{"t": {top!r}, "conn": "c", "event": "close"}}\n'
    )
    _, events, problems = load(path)
    assert events == [Close(0.0, "c", None), Close(top, "c", None)] and problems == []


# --- what round trips keep (issue 8 item 11) --------------------------------------------


def test_a_text_chunk_that_is_not_utf8_keeps_its_flag_and_its_bytes(tmp_path: Path) -> None:
    events: list[Event] = [
        Data(1.0, "c", "outlet", b"\xff\xfe half", text=True),
        Data(2.0, "c", "outlet", b"\xff\xfe half", text=False),
    ]
    written = lines_of(events)
    assert written[0]["b64"] == written[1]["b64"] == "//4gaGFsZg=="
    assert written[0]["form"] == "text" and "form" not in written[1]
    path = tmp_path / "form.jsonl"
    write_trace(path, {}, events)
    assert load(path)[1] == events
    # a reader that knows only DESIGN 4.1 still gets the bytes: form is one more key
    for line in path.read_text().splitlines()[1:]:
        assert base64.b64decode(json.loads(line)["b64"]) == b"\xff\xfe half"


@pytest.mark.parametrize("field", ["conn", "app", "outlet", "error"])
def test_a_string_no_capture_can_hold_is_reported_not_carried(tmp_path: Path, field: str) -> None:
    """JSON can spell an unpaired surrogate; msgpack (and any wire) cannot carry one."""
    rec = {"t": 1, "conn": "c", "event": "open", "transport": "tcp", "app": "a", "outlet": "o"}
    if field == "error":
        rec = {"t": 1, "conn": "c", "event": "close", "error": "x"}
    rec[field] = "\ud800x"
    path = tmp_path / "surrogate.jsonl"
    path.write_text(json.dumps(rec) + "\n" + '{"t": 2, "conn": "c", "event": "close"}\n')
    _, events, problems = load(path)
    assert events == [Close(2.0, "c", None)]
    assert problems == [
        f"line 1: field {field!r} holds an unpaired surrogate, not UTF-8; line skipped"
    ]


def test_a_data_record_with_a_surrogate_in_conn_is_refused_too(tmp_path: Path) -> None:
    """The fast path for data records checks conn as the general path does."""
    path = tmp_path / "surrogate.jsonl"
    path.write_text('{"t": 1.0, "conn": "\\udc80", "event": "data", "from": "app", "text": "x"}\n')
    assert load(path)[2] == [
        "line 1: field 'conn' holds an unpaired surrogate, not UTF-8; line skipped"
    ]


def test_metadata_nested_too_deeply_is_left_out_and_the_events_read(tmp_path: Path) -> None:
    """Decoding it recursed past Python's limit (995 levels: a RecursionError)."""
    for depth in (201, 995):
        path = tmp_path / f"deep{depth}.jsonl"
        path.write_text(
            '{"invisproxy_trace": 1, "x": ' + "[" * depth + "1" + "]" * depth + "}\n"
            '{"t": 1, "conn": "c", "event": "close"}\n'
        )
        assert load(path) == (
            {},
            [Close(1.0, "c", None)],
            ["line 1: metadata nests more than 200 levels deep; left out, the events are read"],
        )
    path = tmp_path / "deep200.jsonl"
    path.write_text('{"invisproxy_trace": 1, "x": ' + "[" * 199 + "1" + "]" * 199 + "}\n")
    assert load(path)[2] == []
