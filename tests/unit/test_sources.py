"""Opening a recording by its content: captures, traces, and everything that is neither."""

from __future__ import annotations

import os
from pathlib import Path

import msgpack
import pytest

from proxy.core.errors import UserError
from proxy.core.events import Close, Data, Event, Open
from proxy.store.capture import write_capture
from proxy.store.recording import SourceError, load_events, sniff
from proxy.store.trace import write_trace

EVENTS: list[Event] = [
    Open(0.0, "c1", "ws", "127.0.0.1:5", "10.0.0.5:80"),
    Data(0.5, "c1", "app", b'{"x": 1}'),
    Close(1.0, "c1", "app"),
]


def test_the_content_decides_not_the_extension(tmp_path: Path) -> None:
    capture = tmp_path / "really-a-capture.jsonl"
    trace = tmp_path / "really-a-trace.invcap"
    write_capture(capture, {"m": 1}, EVENTS)
    write_trace(trace, {"m": 2}, EVENTS)
    assert sniff(capture) == "capture" and sniff(trace) == "trace"
    with load_events(capture) as source:
        assert source.kind == "capture" and source.meta["m"] == 1
        assert list(source.events) == EVENTS and source.problems == []
    with load_events(trace) as source:
        assert source.kind == "trace" and source.meta == {"m": 2}
        assert list(source.events) == EVENTS and source.problems == []


def test_a_trace_with_a_bom_or_leading_blank_lines_is_still_a_trace(tmp_path: Path) -> None:
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b"\xef\xbb\xbf\n" + b'{"t": 1, "conn": "c", "event": "close"}\n')
    with load_events(path) as source:
        assert list(source.events) == [Close(1.0, "c", None)]


def test_problems_fill_in_while_reading(tmp_path: Path) -> None:
    path = tmp_path / "cut.invcap"
    write_capture(path, {}, EVENTS)
    path.write_bytes(path.read_bytes()[:-2])
    with load_events(path) as source:
        assert source.problems == []
        assert list(source.events) == EVENTS[:-1]
        assert len(source.problems) == 1 and "cut short" in str(source.problems[0])


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is empty: it holds no capture or trace"),
        (b"  \n\n", "is blank"),
        (
            b"\x7fELF\x02\x01\x01\x00",
            "neither an invisproxy capture nor a trace: it starts with the bytes 7f 45 4c 46",
        ),
        (b"\x1f\x8b\x08\x00junk", "looks like gzip-compressed; decompress it first"),
        (b"\xd4\xc3\xb2\xa1\x02\x00", "looks like a pcap packet capture"),
        (b"time,conn,data\n1,c1,x\n", "starts with 'time,conn,data\\n1,c1,x\\n'"),
        (msgpack.packb({"not": "a header"}), "not an invisproxy capture"),
        (msgpack.packb({"invisproxy_capture": 9}), "capture format version 9 is newer"),
        (b'{"invisproxy_trace": 3}\n', "trace format version 3 is newer"),
        (b'{"json": "but not a trace"}', "is not an invisproxy trace"),
    ],
)
def test_files_that_cannot_be_opened_say_why(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "input"
    path.write_bytes(content)
    with pytest.raises(SourceError) as info:
        load_events(path)
    assert message in str(info.value)
    assert str(info.value).startswith(str(path))
    assert isinstance(info.value, UserError)


def test_missing_directory_and_special_files(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="no such file"):
        load_events(tmp_path / "missing.invcap")
    with pytest.raises(SourceError, match="is a directory, not a capture or trace"):
        load_events(tmp_path)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(SourceError, match="not a regular file"):
        load_events(fifo)  # and does not hang waiting for a writer


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "secret.invcap"
    write_capture(path, {}, EVENTS)
    path.chmod(0)
    with pytest.raises(SourceError, match="permission denied"):
        load_events(path)
