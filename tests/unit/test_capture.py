"""Capture files (DESIGN 4.2): layout, crash cuts, corruption, following, round trips.

Over 500 lines because one file format is tested from every side (the sections below),
all through the writer/reader helpers at the top."""

from __future__ import annotations

import io
import math
import os
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from proxy.core.events import T_MAX, Close, Data, Event, Open
from proxy.store.capture import (
    CAPTURE_KEY,
    CAPTURE_VERSION,
    CaptureFollower,
    CaptureWriter,
    ReadStats,
    read_capture,
    write_capture,
)
from proxy.store.meta import META_TAGS
from proxy.store.records import Loaded, SourceError
from proxy.store.trace import read_trace, write_trace

EVENTS: list[Event] = [
    Open(0.0, "c1", "tcp", "127.0.0.1:50122", "10.0.0.5:3333"),
    Data(0.01, "c1", "app", b'{"packetID":221040,"payload":{"callbackName":20}}\n'),
    Data(0.05, "c1", "outlet", b"\x00\xff binary", text=False),
    Data(0.06, "c1", "app", b'{"inj":1}', injected=True),
    Open(1.0, "w1", "ws", "127.0.0.1:50200", "10.0.0.5:80"),
    Data(1.5, "w1", "outlet", "é→😀".encode()),
    Close(8.0, "w1", None, "connection reset"),
    Close(9.0, "c1", "outlet"),
]


def exact(events: Sequence[Event]) -> list[tuple[Any, ...]]:
    """Events with ``t`` compared bit for bit (== would equate 0.0 and -0.0)."""
    out = []
    for e in events:
        fields = tuple(getattr(e, name) for name in e.__slots__)
        out.append((type(e).__name__, e.t.hex(), *fields))
    return out


def raw_records(path: Path) -> list[Any]:
    with path.open("rb") as fp:
        return list(msgpack.Unpacker(fp, raw=False))


def record_offsets(path: Path) -> list[int]:
    """Byte offset where each record (header first) starts, plus the file size."""
    data = path.read_bytes()
    unpacker = msgpack.Unpacker(raw=False)
    unpacker.feed(data)
    offsets = [0]
    for _ in unpacker:
        offsets.append(unpacker.tell())
    assert offsets[-1] == len(data)
    return offsets


def read_all(path: Path) -> tuple[list[Event], list[str], dict[str, Any]]:
    with read_capture(path) as loaded:
        events = list(loaded.events)
    return events, [str(p) for p in loaded.problems], loaded.meta


@pytest.fixture
def capture(tmp_path: Path) -> Path:
    path = tmp_path / "c.invcap"
    write_capture(path, {"outlet": "10.0.0.5"}, EVENTS)
    return path


# --- layout -----------------------------------------------------------------------------


def test_header_then_one_map_per_event_with_raw_bytes_as_bin(capture: Path) -> None:
    before = time.time()
    recs = raw_records(capture)
    head = recs[0]
    assert head[CAPTURE_KEY] == CAPTURE_VERSION == 1
    assert isinstance(head["created"], float) and head["created"] <= before
    assert head["outlet"] == "10.0.0.5"
    assert recs[1] == {
        "t": 0.0,
        "conn": "c1",
        "event": "open",
        "transport": "tcp",
        "app": "127.0.0.1:50122",
        "outlet": "10.0.0.5:3333",
    }
    assert recs[2]["event"] == "data" and recs[2]["from"] == "app"
    # raw=False turns msgpack str into str: bytes here means the payload went in as bin
    assert isinstance(recs[2]["data"], bytes) and recs[2]["text"] is True
    assert "injected" not in recs[2]
    assert recs[3]["data"] == b"\x00\xff binary" and recs[3]["text"] is False
    assert recs[4]["injected"] is True
    assert recs[7] == {
        "t": 8.0,
        "conn": "w1",
        "event": "close",
        "by": None,
        "error": "connection reset",
    }
    assert recs[8] == {"t": 9.0, "conn": "c1", "event": "close", "by": "outlet"}


def test_reads_back_every_event_and_the_meta(capture: Path) -> None:
    events, problems, meta = read_all(capture)
    assert exact(events) == exact(EVENTS)
    assert problems == []
    assert meta["outlet"] == "10.0.0.5" and CAPTURE_KEY not in meta


def test_meta_may_carry_created_but_not_override_the_format_key(tmp_path: Path) -> None:
    path = tmp_path / "m.invcap"
    write_capture(path, {"created": 12.5, CAPTURE_KEY: 99}, [])
    assert raw_records(path) == [{CAPTURE_KEY: 1, "created": 12.5}]


def test_writer_refuses_to_overwrite_unless_told(capture: Path) -> None:
    with pytest.raises(FileExistsError):
        CaptureWriter(capture)
    assert exact(read_all(capture)[0]) == exact(EVENTS)
    with CaptureWriter(capture, overwrite=True) as writer:
        writer.write(EVENTS[0])
    assert exact(read_all(capture)[0]) == exact(EVENTS[:1])


def test_flush_each_hands_every_event_to_the_os_before_close(tmp_path: Path) -> None:
    path = tmp_path / "live.invcap"
    writer = CaptureWriter(path, {})
    try:
        for i, event in enumerate(EVENTS, 1):
            writer.write(event)
            events, problems, _ = read_all(path)  # another file handle: what the OS holds
            assert exact(events) == exact(EVENTS[:i])
            assert problems == []
    finally:
        writer.close()
    assert writer.count == len(EVENTS)


def test_buffered_writer_is_complete_after_close(tmp_path: Path) -> None:
    path = tmp_path / "bulk.invcap"
    with CaptureWriter(path, {}, flush_each=False) as writer:
        assert writer.write_all(EVENTS) == len(EVENTS)
    assert exact(read_all(path)[0]) == exact(EVENTS)


# --- cuts -------------------------------------------------------------------------------


def test_cut_at_every_byte_of_the_last_record(capture: Path, tmp_path: Path) -> None:
    data = capture.read_bytes()
    offsets = record_offsets(capture)
    start = offsets[-2]
    cut_file = tmp_path / "cut.invcap"
    for cut in range(start, len(data) + 1):
        cut_file.write_bytes(data[:cut])
        events, problems, _ = read_all(cut_file)
        if cut == len(data):
            assert exact(events) == exact(EVENTS) and problems == []
        elif cut == start:
            assert exact(events) == exact(EVENTS[:-1]) and problems == []
        else:
            assert exact(events) == exact(EVENTS[:-1]), cut
            assert len(problems) == 1, (cut, problems)
            assert (
                f"file ends in the middle of a record after {len(EVENTS) - 1} events"
                in (problems[0])
            )
            assert "cut short" in problems[0]
            assert f"at byte {start}" in problems[0]


def test_cut_at_random_offsets_in_the_middle(tmp_path: Path) -> None:
    events = [Data(i * 0.5, f"c{i % 3}", "app", b'{"n": %d}\n' % i * (i % 7)) for i in range(300)]
    path = tmp_path / "long.invcap"
    write_capture(path, {}, events)
    data = path.read_bytes()
    offsets = record_offsets(path)
    rng = random.Random(20240521)
    cut_file = tmp_path / "cut.invcap"
    for cut in rng.sample(range(offsets[1], len(data)), 40):
        cut_file.write_bytes(data[:cut])
        complete = sum(1 for end in offsets[2:] if end <= cut)
        got, problems, _ = read_all(cut_file)
        assert exact(got) == exact(events[:complete]), cut
        on_boundary = cut in offsets
        assert len(problems) == (0 if on_boundary else 1)
        if not on_boundary:
            assert f"after {complete} events" in problems[0]


def test_a_capture_cut_inside_its_header_is_refused_clearly(capture: Path, tmp_path: Path) -> None:
    cut = tmp_path / "h.invcap"
    cut.write_bytes(capture.read_bytes()[:5])
    with pytest.raises(SourceError, match="ends inside its capture header"):
        read_capture(cut)


def test_a_capture_with_only_a_header_has_no_events(tmp_path: Path) -> None:
    path = tmp_path / "empty.invcap"
    CaptureWriter(path, {"x": 1}).close()
    assert read_all(path) == ([], [], {"created": pytest.approx(time.time(), abs=60), "x": 1})


# --- refusals ---------------------------------------------------------------------------


def test_newer_version_is_refused_with_upgrade_advice(tmp_path: Path) -> None:
    path = tmp_path / "new.invcap"
    path.write_bytes(msgpack.packb({CAPTURE_KEY: 7, "created": 1.0}))
    with pytest.raises(SourceError) as info:
        read_capture(path)
    assert str(info.value) == (
        f"{path}: capture format version 7 is newer than this invisproxy understands (1); "
        "upgrade invisproxy"
    )


@pytest.mark.parametrize("version", [0, -1, "1", True, None, 1.0])
def test_bad_versions_are_refused(tmp_path: Path, version: object) -> None:
    path = tmp_path / "bad.invcap"
    path.write_bytes(msgpack.packb({CAPTURE_KEY: version}))
    with pytest.raises(SourceError, match="bad version"):
        read_capture(path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is empty"),
        (msgpack.packb({"t": 1.0, "event": "open"}), "not an invisproxy capture"),
        (msgpack.packb([1, 2, 3]), "not an invisproxy capture"),
        (b"\xc1\xc1\xc1garbage", "not an invisproxy capture"),
        (b'{"invisproxy_trace": 1}\n', "not an invisproxy capture"),
    ],
)
def test_files_that_are_not_captures_say_so(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "x.invcap"
    path.write_bytes(content)
    with pytest.raises(SourceError, match=message):
        read_capture(path)


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="no such file"):
        read_capture(tmp_path / "nope.invcap")
    with pytest.raises(SourceError, match="is a directory"):
        read_capture(tmp_path)


# --- damaged records --------------------------------------------------------------------


def pack_all(records: list[Any]) -> bytes:
    packer = msgpack.Packer(use_bin_type=True)
    return b"".join(packer.pack(r) for r in records)


def test_unknown_event_types_and_missing_fields_are_reported_and_skipped(tmp_path: Path) -> None:
    good = {"t": 1.0, "conn": "c", "event": "data", "from": "app", "data": b"x", "text": True}
    records = [
        {CAPTURE_KEY: 1, "created": 0.0},
        good,
        {"t": 2.0, "conn": "c", "event": "teleport"},
        {"t": 3.0, "conn": "c", "event": "data", "from": "app"},
        {"t": 4.0, "conn": "c", "event": "open", "transport": "udp", "app": "a", "outlet": "o"},
        {"conn": "c", "event": "close"},
        {"t": 5.0, "conn": "c", "event": "data", "from": "app", "data": "str, not bin"},
        "not a map",
        {**good, "t": 0.5, "future_field": [1, 2]},
    ]
    path = tmp_path / "odd.invcap"
    path.write_bytes(pack_all(records))
    events, problems, _ = read_all(path)
    assert exact(events) == exact([Data(1.0, "c", "app", b"x"), Data(0.5, "c", "app", b"x")])
    assert len(problems) == 7
    offsets = record_offsets(path)
    expected = [
        (2, "unknown event type 'teleport'; skipped"),
        (3, "missing field 'data'; skipped"),
        (4, "field 'transport' should be 'tcp' or 'ws', not 'udp'; skipped"),
        (5, "missing field 't'; skipped"),
        (6, "field 'data' should be bytes (msgpack bin); skipped"),
        (7, "expected an event object, got 'not a map'; skipped"),
        (8, "time goes backwards (0.5 after 1.0); event kept"),
    ]
    for problem, (index, text) in zip(problems, expected, strict=True):
        assert problem == f"record {index} at byte {offsets[index]}: {text}"


def test_a_corrupt_record_in_the_middle_loses_nothing_else(capture: Path, tmp_path: Path) -> None:
    data = bytearray(capture.read_bytes())
    offsets = record_offsets(capture)
    data[offsets[3]] = 0xC1  # "never used" in msgpack: record 3 can no longer be decoded
    path = tmp_path / "corrupt.invcap"
    path.write_bytes(bytes(data))
    events, problems, _ = read_all(path)
    assert exact(events) == exact(EVENTS[:2] + EVENTS[3:])
    assert problems == [
        f"record 3 at byte {offsets[3]}: corrupt (FormatError); skipped "
        f"{offsets[4] - offsets[3]} bytes to the next record at byte {offsets[4]}"
    ]


def test_a_corrupt_length_that_swallows_the_rest_is_resynchronised(
    capture: Path, tmp_path: Path
) -> None:
    data = bytearray(capture.read_bytes())
    offsets = record_offsets(capture)
    # record 2 is a data record; make its map claim 15 entries so it eats the next ones
    assert data[offsets[2]] & 0xF0 == 0x80
    data[offsets[2]] = 0x8F
    path = tmp_path / "swallow.invcap"
    path.write_bytes(bytes(data))
    events, problems, _ = read_all(path)
    # record 2 tries to take record 3 as a map key, which msgpack refuses: record 2 is
    # lost and reading resumes at record 3
    assert exact(events) == exact([EVENTS[0], *EVENTS[2:]])
    assert problems == [
        f"record 2 at byte {offsets[2]}: corrupt (dict is not allowed for map key when "
        f"strict_map_key=True); skipped {offsets[3] - offsets[2]} bytes to the next record "
        f"at byte {offsets[3]}"
    ]


def test_ext_types_are_refused_as_data(tmp_path: Path) -> None:
    records = [
        {CAPTURE_KEY: 1, "created": 0.0},
        {"t": 1.0, "conn": "c", "event": "close", "by": msgpack.ExtType(5, b"code")},
        {"t": 2.0, "conn": "c", "event": "close", "by": "app"},
    ]
    path = tmp_path / "ext.invcap"
    path.write_bytes(pack_all(records))
    events, problems, _ = read_all(path)
    assert exact(events) == exact([Close(2.0, "c", "app")])
    assert len(problems) == 1 and "extension type 5" in problems[0]


# --- following a capture being written ----------------------------------------------------


def test_follower_keeps_a_partial_record_until_it_is_complete(tmp_path: Path) -> None:
    whole = tmp_path / "whole.invcap"
    write_capture(whole, {"k": "v"}, EVENTS)
    data = whole.read_bytes()
    offsets = record_offsets(whole)
    path = tmp_path / "growing.invcap"
    path.write_bytes(b"")
    with CaptureFollower(path) as follower, path.open("ab", buffering=0) as out:
        assert follower.poll() == [] and follower.meta is None
        seen: list[Event] = []
        # append the file in awkward pieces: header split, records split at odd places
        cuts = sorted({*range(0, len(data), 7), offsets[1] - 1, offsets[1], len(data)})
        last = 0
        for cut in cuts:
            out.write(data[last:cut])
            last = cut
            got = follower.poll()
            seen += got
            complete = sum(1 for end in offsets[2:] if end <= cut)
            assert exact(seen) == exact(EVENTS[:complete]), cut
            assert follower.meta == (
                None
                if cut < offsets[1]
                else {"created": pytest.approx(raw_records(whole)[0]["created"]), "k": "v"}
            )
        assert follower.problems == [] and follower.pending == 0


def test_follower_polls_while_another_thread_writes(tmp_path: Path) -> None:
    path = tmp_path / "threaded.invcap"
    total = 3000
    expected = [Data(i * 0.001, "c1", "outlet", b'{"i": %d}' % i) for i in range(total)]
    writer = CaptureWriter(path, {})
    follower = CaptureFollower(path)
    errors: list[BaseException] = []

    def write() -> None:
        try:
            for event in expected:
                writer.write(event)
        except BaseException as exc:  # surfaced in the main thread
            errors.append(exc)
        finally:
            writer.close()

    thread = threading.Thread(target=write)
    thread.start()
    seen: list[Event] = []
    polls = 0
    deadline = time.monotonic() + 30
    while len(seen) < total and time.monotonic() < deadline:
        seen += follower.poll(max_bytes=4096)
        polls += 1
    thread.join(10)
    follower.close()
    assert not errors
    assert exact(seen) == exact(expected)
    assert polls > 1 and follower.problems == []


def test_follower_refuses_a_file_that_is_not_a_capture(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text('{"invisproxy_trace": 1}\n')
    with CaptureFollower(path) as follower, pytest.raises(SourceError, match="not an invisproxy"):
        follower.poll()
    newer = tmp_path / "n.invcap"
    newer.write_bytes(msgpack.packb({CAPTURE_KEY: 2}))
    with CaptureFollower(newer) as follower:
        with pytest.raises(SourceError, match="version 2 is newer"):
            follower.poll()
        assert follower.poll() == []  # stays refused


def test_follower_reports_corruption_and_stops(capture: Path, tmp_path: Path) -> None:
    data = bytearray(capture.read_bytes())
    offsets = record_offsets(capture)
    data[offsets[3]] = 0xC1
    path = tmp_path / "c.invcap"
    path.write_bytes(bytes(data))
    with CaptureFollower(path) as follower:
        assert exact(follower.poll()) == exact(EVENTS[:2])
        assert len(follower.problems) == 1 and "corrupt" in str(follower.problems[0])
        assert follower.poll() == []


# --- a writer killed mid-recording ------------------------------------------------------

KILLED_WRITER = textwrap.dedent(
    """
    import sys
    from proxy.store.capture import CaptureWriter
    from proxy.core.events import Data

    with CaptureWriter(sys.argv[1], {"test": "sigkill"}) as writer:
        print("ready", flush=True)
        i = 0
        while True:
            chunk = b'{"i": %d, "pad": "' % i + b"x" * (i % 5000) + b'"}'
            writer.write(Data(i * 0.001, "c%d" % (i % 4), "app", chunk))
            i += 1
    """
)


def killed_chunk(i: int) -> Data:
    chunk = b'{"i": %d, "pad": "' % i + b"x" * (i % 5000) + b'"}'
    return Data(i * 0.001, f"c{i % 4}", "app", chunk)


def test_sigkill_loses_nothing_written_before_it(tmp_path: Path) -> None:
    path = tmp_path / "killed.invcap"
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, str(path)], stdout=subprocess.PIPE
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == b"ready\n"  # the header is written by now
        seen = 0
        deadline = time.monotonic() + 60
        with CaptureFollower(path) as follower:
            while seen < 500:
                assert time.monotonic() < deadline, "the writer did not produce 500 records"
                assert proc.poll() is None, "the writer died on its own"
                got = follower.poll()
                seen += len(got)
                if not got:
                    time.sleep(0.002)  # poll interval; the condition is the record count
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    assert proc.returncode == -signal.SIGKILL
    events, problems, meta = read_all(path)
    assert meta["test"] == "sigkill"
    assert len(events) >= 500
    assert exact(events) == exact([killed_chunk(i) for i in range(len(events))])
    size = path.stat().st_size
    complete_end = record_offsets_prefix(path)
    if complete_end == size:
        assert problems == []
    else:
        assert len(problems) == 1 and "cut short" in problems[0]


def record_offsets_prefix(path: Path) -> int:
    unpacker = msgpack.Unpacker(raw=False)
    unpacker.feed(path.read_bytes())
    end = 0
    for _ in unpacker:
        end = unpacker.tell()
    return end


# --- round trips --------------------------------------------------------------------------

texts = st.text(st.characters(exclude_categories=["Cs"]), max_size=30)
times = st.floats(0.0, T_MAX, exclude_max=True, width=64)  # every time a reader accepts


@st.composite
def event_lists(draw: Callable[..., Any]) -> list[Event]:
    conns = draw(st.lists(texts, min_size=1, max_size=4, unique=True))
    n = draw(st.integers(0, 25))
    ts = sorted(draw(st.lists(times, min_size=n, max_size=n)))
    out: list[Event] = []
    for t in ts:
        conn = draw(st.sampled_from(conns))
        kind = draw(st.sampled_from(["open", "text", "binary", "close"]))
        if kind == "open":
            out.append(
                Open(t, conn, draw(st.sampled_from(["tcp", "ws"])), draw(texts), draw(texts))
            )
        elif kind == "text":
            payload = draw(texts).encode()
            out.append(
                Data(
                    t,
                    conn,
                    draw(st.sampled_from(["app", "outlet"])),
                    payload,
                    True,
                    draw(st.booleans()),
                )
            )
        elif kind == "binary":
            out.append(
                Data(
                    t,
                    conn,
                    draw(st.sampled_from(["app", "outlet"])),
                    draw(st.binary(max_size=40)),
                    False,
                    draw(st.booleans()),
                )
            )
        else:
            by = draw(st.sampled_from([None, "app", "outlet", "proxy"]))
            out.append(Close(t, conn, by, draw(st.none() | texts)))
    return out


metas = st.dictionaries(
    texts, st.none() | st.booleans() | st.integers(-(2**53), 2**53) | texts, max_size=3
)

FAST = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@FAST
@given(events=event_lists(), meta=metas)
def test_capture_round_trip(tmp_path: Path, events: list[Event], meta: dict[str, Any]) -> None:
    path = tmp_path / "rt.invcap"
    write_capture(path, meta, events, overwrite=True)
    got, problems, got_meta = read_all(path)
    assert exact(got) == exact(events) and problems == []
    assert {k: v for k, v in got_meta.items() if k != "created"} == {
        k: v for k, v in meta.items() if k not in ("created", CAPTURE_KEY)
    }


@FAST
@given(events=event_lists(), meta=metas)
def test_trace_to_capture_to_trace_is_identical(
    tmp_path: Path, events: list[Event], meta: dict[str, Any]
) -> None:
    meta = {k: v for k, v in meta.items() if k != "invisproxy_trace"}
    first = io.StringIO()
    write_trace(first, {**meta, "created": 5.0}, events)
    trace = tmp_path / "a.jsonl"
    trace.write_text(first.getvalue(), encoding="utf-8")
    with read_trace(trace) as loaded:
        write_capture(tmp_path / "b.invcap", loaded.meta, loaded.events, overwrite=True)
    assert loaded.problems == []
    with read_capture(tmp_path / "b.invcap") as loaded:
        second = io.StringIO()
        write_trace(second, loaded.meta, loaded.events)
    assert loaded.problems == []
    assert second.getvalue() == first.getvalue()


@FAST
@given(events=event_lists())
def test_capture_to_trace_to_capture_is_identical(tmp_path: Path, events: list[Event]) -> None:
    a = tmp_path / "a.invcap"
    write_capture(a, {"note": "x"}, events, overwrite=True)
    with read_capture(a) as loaded:
        write_trace(tmp_path / "t.jsonl", loaded.meta, loaded.events, overwrite=True)
    with read_trace(tmp_path / "t.jsonl") as loaded:
        write_capture(tmp_path / "b.invcap", loaded.meta, loaded.events, overwrite=True)
    assert (tmp_path / "b.invcap").read_bytes() == a.read_bytes()
    assert exact(read_all(tmp_path / "b.invcap")[0]) == exact(events)


def test_time_survives_both_formats_bit_for_bit(tmp_path: Path) -> None:
    tricky = [0.1 + 0.2, 5e-324, -0.0, 1 / 3, 1234567890.123456789, math.nextafter(T_MAX, 0)]
    events = [Close(t, "c", None) for t in sorted(tricky)]
    write_capture(tmp_path / "a.invcap", {}, events)
    with read_capture(tmp_path / "a.invcap") as loaded:
        write_trace(tmp_path / "a.jsonl", {}, loaded.events)
    with read_trace(tmp_path / "a.jsonl") as loaded:
        assert [e.t.hex() for e in loaded.events] == [t.hex() for t in sorted(tricky)]


def test_os_sees_header_as_soon_as_writer_opens(tmp_path: Path) -> None:
    path = tmp_path / "h.invcap"
    with CaptureWriter(path, {"a": 1}):
        assert os.path.getsize(path) > 0
        assert read_all(path)[2]["a"] == 1


# --- times out of range (issue 8 item 7) ------------------------------------------------


def test_a_time_no_clock_can_show_is_reported_with_its_record_and_skipped(tmp_path: Path) -> None:
    """The fast path for data records checks the range as the general path does."""
    good = {"t": 1.0, "conn": "c", "event": "data", "from": "app", "data": b"x", "text": True}
    absurd = [1e20, 1.99e139, -0.5, T_MAX, float("nan"), float("inf"), -float("inf")]
    records: list[Any] = [{CAPTURE_KEY: 1, "created": 0.0}, good]
    for t in absurd:
        records += [{**good, "t": t}, {"t": t, "conn": "c", "event": "close", "by": None}]
    records.append({**good, "t": 2.0})
    path = tmp_path / "times.invcap"
    path.write_bytes(pack_all(records))
    events, problems, _ = read_all(path)
    assert exact(events) == exact([Data(1.0, "c", "app", b"x"), Data(2.0, "c", "app", b"x")])
    offsets = record_offsets(path)
    assert len(problems) == 2 * len(absurd)
    for i, problem in enumerate(problems):
        where = f"record {i + 2} at byte {offsets[i + 2]}: field 't' "
        assert problem.startswith(where) and problem.endswith("; skipped"), problem
        assert ("out of range" if math.isfinite(absurd[i // 2]) else "finite") in problem


# --- resynchronisation is linear (issue 8 item 8) ---------------------------------------


def chunk_of(i: int) -> bytes:
    return b'{"packetID":%d,"payload":{"callbackName":20,"callbackArgs":[1,0]}}\n' % (100000 + i)


def damaged(tmp_path: Path, n: int, how: str) -> tuple[Path, list[Event]]:
    """A capture of ``n`` data records, damaged ``how``; returns it and what must survive."""
    events: list[Event] = [Data(1.0 + i, "c1", "app", chunk_of(i)) for i in range(n)]
    clean = tmp_path / f"clean-{how}-{n}.invcap"
    write_capture(clean, {}, events)
    data = bytearray(clean.read_bytes())
    offsets = record_offsets(clean)  # header, then record i + 1 at offsets[i + 1]
    keep: list[Event] = []
    for i, event in enumerate(events):
        at = offsets[i + 1]
        hit = (i % 2 == 1) if how == "alternate" else (0 < i < n - 1)
        if not hit:
            keep.append(event)
        elif how in ("every", "alternate"):
            data[at + 12] = 0xC1  # inside the record, after its "t": not msgpack
        elif how == "long":
            # the bin of the payload claims 4 GB: a length that swallows the rest
            pos = data.index(b"\xa4data\xc4", at) + 5
            data[pos : pos + 2] = b"\xc6\xff"  # bin32, length 0xff......
        else:
            raise AssertionError(how)
    path = tmp_path / f"{how}-{n}.invcap"
    path.write_bytes(bytes(data))
    return path, keep


@pytest.mark.parametrize("how", ["every", "alternate", "long"])
def test_resynchronising_costs_work_in_proportion_to_the_file(tmp_path: Path, how: str) -> None:
    """Counted, not timed: reading 4x the damage reads, searches and checks about 4x."""
    work = []
    for n in (500, 2000):
        path, keep = damaged(tmp_path, n, how)
        stats = ReadStats()
        with read_capture(path, stats=stats) as loaded:
            got = list(loaded.events)
        assert exact(got) == exact(keep)
        why = "unreadable (it runs past the end of the file)" if how == "long" else "corrupt"
        assert loaded.problems and all(why in str(p) for p in loaded.problems)
        size = path.stat().st_size
        restarts = len(loaded.problems)
        # each byte is read about once, plus at most one small first read per restart
        assert stats.bytes_read <= size + 2 * 1024 * restarts, (stats, size)
        assert stats.bytes_scanned <= size
        assert stats.candidates <= n  # one per record start at most
        work.append((stats.bytes_read, stats.bytes_scanned, stats.candidates))
    for small, large in zip(work[0], work[1], strict=True):
        assert large <= 4.5 * max(small, 1), work


def test_a_clean_capture_is_read_once_and_never_searched(tmp_path: Path) -> None:
    path = tmp_path / "clean.invcap"
    write_capture(path, {}, [Data(1.0 + i, "c1", "app", chunk_of(i)) for i in range(3000)])
    stats = ReadStats()
    with read_capture(path, stats=stats) as loaded:
        assert sum(1 for _ in loaded.events) == 3000
    assert loaded.problems == []
    assert stats == ReadStats(bytes_read=path.stat().st_size, bytes_scanned=0, candidates=0)


def test_a_long_record_cut_short_is_reported_as_a_cut(tmp_path: Path) -> None:
    """Measured from its headers, the cut record is not read to the end of the file."""
    events: list[Event] = [Data(1.0, "w1", "app", b"a"), Data(2.0, "w1", "outlet", b"x" * 50_000)]
    path = tmp_path / "cut.invcap"
    write_capture(path, {}, events)
    size = path.stat().st_size
    with open(path, "r+b") as fp:
        fp.truncate(size - 20_000)
    start = record_offsets_prefix(path)
    stats = ReadStats()
    with read_capture(path, stats=stats) as loaded:
        assert exact(list(loaded.events)) == exact(events[:1])
    assert [str(p) for p in loaded.problems] == [
        f"file ends in the middle of a record after 1 events ({size - 20_000 - start} bytes "
        f"at byte {start} were not readable); the capture was probably cut short"
    ]
    assert stats.bytes_read == size - 20_000


def test_a_long_record_is_measured_not_searched_for(tmp_path: Path) -> None:
    """A 5 MB WebSocket message straddles many reads; it is read whole, once."""
    big = Data(2.0, "w1", "outlet", b"x" * (5 << 20))
    events: list[Event] = [Data(1.0, "w1", "app", b"a"), big, Data(3.0, "w1", "app", b"b")]
    path = tmp_path / "big.invcap"
    write_capture(path, {}, events)
    stats = ReadStats()
    with read_capture(path, stats=stats) as loaded:
        assert exact(list(loaded.events)) == exact(events)
    assert loaded.problems == [] and stats.bytes_read == path.stat().st_size


# --- round trips of anything (issue 8 item 11) ------------------------------------------

any_text = st.text(max_size=12)  # surrogates included: JSON can spell them, msgpack cannot
scalars = (
    st.none()
    | st.booleans()
    | st.integers()  # beyond 64 bits too
    | st.floats(allow_nan=True, allow_infinity=True)
    | any_text
    | st.binary(max_size=12)
)
meta_keys = any_text | st.binary(max_size=6) | st.sampled_from([*META_TAGS, "created", "$x"])
meta_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.lists(inner, max_size=3).map(tuple)
        | st.dictionaries(meta_keys, inner, max_size=3)
    ),
    max_leaves=12,
)
any_meta = st.dictionaries(
    meta_keys.filter(lambda k: k not in (CAPTURE_KEY, "invisproxy_trace")), meta_values, max_size=4
)


def same(a: Any, b: Any) -> bool:
    """Equal and of the same types all the way down (NaN equals NaN, -0.0 is not 0.0)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return bool(a.hex() == b.hex())
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return list(map(repr, a)) == list(map(repr, b)) and all(
            same(k, j) and same(a[k], b[j]) for k, j in zip(a, b, strict=True)
        )
    return bool(a == b)


@st.composite
def any_events(draw: Callable[..., Any]) -> list[Event]:
    """Anything a capture can hold: any bytes flagged text or binary, any closer."""
    events = draw(event_lists())
    out: list[Event] = []
    for event in events:
        if isinstance(event, Data) and draw(st.booleans()):
            event = Data(event.t, event.conn, event.side, draw(st.binary(max_size=24)),
                         draw(st.booleans()), event.injected)  # fmt: skip
        out.append(event)
    return out


_SUFFIX = {"capture": ".invcap", "trace": ".jsonl"}


def _write(fmt: str, path: Path, meta: Mapping[str, Any] | None, events: Iterable[Event]) -> None:
    if fmt == "capture":
        write_capture(path, meta, events, overwrite=True, stamp=False)
    else:
        write_trace(path, meta, events, overwrite=True)


def _read(fmt: str, path: Path) -> Loaded:
    return read_capture(path) if fmt == "capture" else read_trace(path)


@FAST
@pytest.mark.parametrize(("outer", "inner"), [("capture", "trace"), ("trace", "capture")])
@given(events=any_events(), meta=any_meta)
def test_anything_goes_through_the_other_format_unchanged(
    tmp_path: Path, outer: str, inner: str, events: list[Event], meta: dict[Any, Any]
) -> None:
    """capture -> trace -> capture and trace -> capture -> trace give the first file back."""
    a, b = tmp_path / f"a{_SUFFIX[outer]}", tmp_path / f"b{_SUFFIX[outer]}"
    mid = tmp_path / f"mid{_SUFFIX[inner]}"
    _write(outer, a, meta, events)
    with _read(outer, a) as loaded:
        _write(inner, mid, loaded.meta, loaded.events)
    assert loaded.problems == [] and same(loaded.meta, meta)
    with _read(inner, mid) as middle:
        _write(outer, b, middle.meta, middle.events)
    assert middle.problems == [] and same(middle.meta, meta)
    assert b.read_bytes() == a.read_bytes()
    with _read(outer, b) as again:
        assert exact(list(again.events)) == exact(events)


@pytest.mark.parametrize("meta", [{"$int": "x"}, {"$map": 1}, {b"raw": 1}, {"t": (1, 2)}])
def test_metadata_survives_the_creation_stamp(tmp_path: Path, meta: dict[Any, Any]) -> None:
    """The stamp is encoded with the metadata, so a tag-named key stays a key."""
    path = tmp_path / "stamped.invcap"
    write_capture(path, meta, [])
    _, problems, got = read_all(path)
    assert problems == [] and isinstance(got.pop("created"), float) and same(got, meta)


def test_metadata_nested_too_deeply_is_left_out_and_the_events_read(tmp_path: Path) -> None:
    deep: Any = 1
    for _ in range(300):
        deep = [deep]
    path = tmp_path / "deep.invcap"
    path.write_bytes(
        pack_all([{CAPTURE_KEY: 1, "x": deep}, {"t": 1.0, "conn": "c", "event": "close"}])
    )
    events, problems, meta = read_all(path)
    assert meta == {} and exact(events) == exact([Close(1.0, "c", None)])
    assert problems == [
        "header: metadata nests more than 200 levels deep; left out, the events are read"
    ]
    with pytest.raises(ValueError, match="nests more than 200 levels"):
        write_capture(tmp_path / "w.invcap", {"x": deep}, [])


@pytest.mark.parametrize(
    "bits", ["7ff8000000000000", "fff8000000000000", "7ff8000000000001", "7ff0000000000001"]
)
def test_every_nan_in_metadata_keeps_its_bits_through_a_trace(tmp_path: Path, bits: str) -> None:
    import struct

    nan = struct.unpack(">d", bytes.fromhex(bits))[0]
    a, t, b = tmp_path / "a.invcap", tmp_path / "t.jsonl", tmp_path / "b.invcap"
    write_capture(a, {"x": nan}, [], stamp=False)
    with read_capture(a) as loaded:
        write_trace(t, loaded.meta, loaded.events)
    with read_trace(t) as traced:
        assert struct.pack(">d", traced.meta["x"]).hex() == bits
        write_capture(b, traced.meta, traced.events, stamp=False)
    assert b.read_bytes() == a.read_bytes()
