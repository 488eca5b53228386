"""`invisproxy import` / `invisproxy export`: conversions, refusals and exit codes."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import msgpack
import pytest

from proxy.cli.main import main
from proxy.core.events import Close, Data, Event, Open
from proxy.store.capture import read_capture, write_capture
from proxy.store.trace import read_trace, write_trace

INVISPROXY = Path(sys.executable).parent / "invisproxy"

EVENTS: list[Event] = [
    Open(0.0, "c1", "tcp", "127.0.0.1:50122", "10.0.0.5:3333"),
    Data(0.01, "c1", "app", b'{"packetID":221040,"payload":{"callbackName":20}}\n'),
    Data(0.05, "c1", "outlet", b"\x00\x01\xfe", text=False, injected=True),
    Close(9.0, "c1", "outlet"),
]


def events_of(path: Path) -> list[Event]:
    with read_capture(path) as loaded:
        return list(loaded.events)


@pytest.fixture
def trace(tmp_path: Path) -> Path:
    path = tmp_path / "session.jsonl"
    write_trace(path, {"created": 3.25, "outlet": "10.0.0.5"}, EVENTS)
    return path


def test_import_writes_a_capture_and_says_how_many_events(
    trace: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "session.invcap"
    assert main(["import", str(trace), "-o", str(out)]) == 0
    assert capsys.readouterr().out == f"imported 4 events from {trace} into {out}\n"
    assert events_of(out) == EVENTS
    with read_capture(out) as loaded:
        assert loaded.meta["outlet"] == "10.0.0.5"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_import_defaults_to_the_captures_folder(
    trace: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["import", str(trace)]) == 0
    assert events_of(tmp_path / "captures" / "session.invcap") == EVENTS


def test_import_refuses_to_overwrite_without_force(
    trace: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "existing.invcap"
    out.write_bytes(b"precious")
    assert main(["import", str(trace), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err == f"invisproxy import: error: {out} already exists; use --force to replace it\n"
    assert out.read_bytes() == b"precious"
    assert main(["import", str(trace), "-o", str(out), "--force"]) == 0
    assert events_of(out) == EVENTS


def test_import_reports_bad_lines_and_keeps_the_rest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "damaged.jsonl"
    lines = [json.dumps({"t": float(i), "conn": "c", "event": "close"}) for i in range(5)]
    lines.insert(2, "{broken")
    path.write_text("\n".join(lines) + "\n")
    out = tmp_path / "d.invcap"
    assert main(["import", str(path), "-o", str(out)]) == 1
    captured = capsys.readouterr()
    assert captured.out == f"imported 5 events from {path} into {out}\n"
    assert f"{path}: line 3: not JSON" in captured.err
    assert "1 problem(s); every readable event was kept" in captured.err
    assert [e.t for e in events_of(out)] == [0.0, 1.0, 2.0, 3.0, 4.0]


def test_import_of_a_capture_points_to_export(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cap = tmp_path / "c.invcap"
    write_capture(cap, {}, EVENTS)
    assert main(["import", str(cap), "-o", str(tmp_path / "o.invcap")]) == 2
    assert "is already a capture; 'invisproxy export'" in capsys.readouterr().err
    assert not (tmp_path / "o.invcap").exists()


def test_import_into_a_missing_folder(
    trace: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "nowhere" / "x.invcap"
    assert main(["import", str(trace), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert (
        err == f"invisproxy import: error: cannot write {out}: folder {out.parent} does not exist\n"
    )


def test_export_to_stdout_is_the_trace(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cap = tmp_path / "c.invcap"
    write_capture(cap, {"created": 1.5}, EVENTS)
    assert main(["export", str(cap)]) == 0
    out = capsys.readouterr().out
    expected = tmp_path / "expected.jsonl"
    write_trace(expected, {"created": 1.5}, EVENTS)
    assert out == expected.read_text()


def test_export_to_a_file_round_trips_to_the_same_capture(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cap = tmp_path / "c.invcap"
    write_capture(cap, {"outlet": "x"}, EVENTS)
    out = tmp_path / "c.jsonl"
    assert main(["export", str(cap), "--format", "trace", "-o", str(out)]) == 0
    assert capsys.readouterr().out == f"exported 4 events from {cap} into {out}\n"
    back = tmp_path / "back.invcap"
    assert main(["import", str(out), "-o", str(back)]) == 0
    assert back.read_bytes() == cap.read_bytes()
    assert main(["export", str(cap), "-o", str(out)]) == 2  # exists
    assert "already exists" in capsys.readouterr().err


def test_export_of_a_cut_capture_keeps_everything_and_reports_the_cut(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cap = tmp_path / "c.invcap"
    write_capture(cap, {}, EVENTS)
    cap.write_bytes(cap.read_bytes()[:-3])
    assert main(["export", str(cap)]) == 1
    captured = capsys.readouterr()
    assert len(captured.out.splitlines()) == 1 + 3  # header and three complete events
    assert "file ends in the middle of a record after 3 events" in captured.err


SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"


def test_export_jsonl_writes_one_decoded_message_per_line_with_its_links(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["export", str(SCENARIOS / "revb_outlet_tcp.jsonl"), "--format", "jsonl"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [m["id"] for m in lines] == list(range(13))
    request = lines[2]
    assert request["callback"] == 21 and request["from"] == "app"
    relations = {(link["to"], link["relation"]) for link in request["links"]}
    assert (3, "ota-sync") in relations and (12, "ota-verify") in relations
    assert lines[3]["links"] == [link for link in request["links"] if link["to"] == 3]


def test_export_redact_removes_credentials_and_says_what(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "shareable.invcap"
    source = SCENARIOS / "two_apps.jsonl"
    assert main(["export", str(source), "--redact", "--format", "capture", "-o", str(out)]) == 0
    said = capsys.readouterr().out
    assert "sys_prefs.mqtt.pass" in said and "sys_prefs.mqtt.user" in said
    assert b"hunter2" in source.read_bytes()
    events = events_of(out)
    raw = b"".join(e.data for e in events if isinstance(e, Data))
    assert b"hunter2" not in raw and b'"pass":"<redacted>"' in raw
    with read_trace(source) as original:
        assert len(list(original.events)) == len(events)


def test_export_capture_needs_an_output_file(
    trace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["export", str(trace), "--format", "capture"]) == 2
    assert "-o FILE" in capsys.readouterr().err


def test_export_refuses_an_unknown_format(trace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", str(trace), "--format", "pcap"]) == 2
    assert "invalid choice: 'pcap'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.invcap", None, "no such file"),
        ("empty.invcap", b"", "is empty"),
        ("garbage.bin", b"\x00\x01\x02\x03", "neither an invisproxy capture nor a trace"),
        ("future.invcap", msgpack.packb({"invisproxy_capture": 7}), "upgrade invisproxy"),
    ],
)
@pytest.mark.parametrize("command", ["import", "export"])
def test_bad_inputs_are_one_line_errors(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    command: str,
    name: str,
    content: bytes | None,
    message: str,
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    args = [command, str(path)] + (["-o", str(tmp_path / "out")] if command == "import" else [])
    assert main(args) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(f"invisproxy {command}: error: {path}")
    assert message in captured.err and captured.err.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_a_directory_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", str(tmp_path)]) == 2
    assert "is a directory, not a capture or trace" in capsys.readouterr().err


def test_help_texts(capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("import", "export"):
        assert main([command, "--help"]) == 0
    help_text = capsys.readouterr().out
    assert "usage: invisproxy import" in help_text and "usage: invisproxy export" in help_text
    assert (
        "--force" in help_text and "--redact" in help_text and "{trace,jsonl,capture}" in help_text
    )


def test_console_script_exit_codes_and_messages(trace: Path, tmp_path: Path) -> None:
    assert INVISPROXY.exists(), f"console script missing: {INVISPROXY}"
    missing = tmp_path / "nope.jsonl"
    run = subprocess.run(
        [str(INVISPROXY), "import", str(missing), "-o", str(tmp_path / "x.invcap")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2
    assert run.stderr == f"invisproxy import: error: {missing}: no such file\n"
    assert "Traceback" not in run.stderr and run.stdout == ""

    out = tmp_path / "ok.invcap"
    run = subprocess.run(
        [str(INVISPROXY), "import", str(trace), "-o", str(out)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (run.returncode, run.stderr) == (0, "")
    run = subprocess.run(
        [str(INVISPROXY), "export", str(out)], capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0
    assert run.stdout == trace.read_text()


def test_console_script_survives_a_closed_pipe(tmp_path: Path) -> None:
    cap = tmp_path / "big.invcap"
    write_capture(cap, {}, [Data(i * 0.1, "c", "app", b"x" * 200) for i in range(20000)])
    proc = subprocess.Popen(
        [str(INVISPROXY), "export", str(cap)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.readline().startswith(b'{"invisproxy_trace": 1')
    proc.stdout.close()  # like `| head -1`
    err = proc.stderr.read()
    assert proc.wait(60) == 1
    assert b"Traceback" not in err and b"BrokenPipe" not in err


def test_exported_trace_reads_back_event_for_event(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cap = tmp_path / "c.invcap"
    write_capture(cap, {}, EVENTS)
    out = tmp_path / "t.jsonl"
    assert main(["export", str(cap), "-o", str(out)]) == 0
    with read_trace(out) as loaded:
        assert list(loaded.events) == EVENTS


def test_odd_metadata_never_stops_a_conversion(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # another tool's capture: bytes and a non-finite float in its header
    cap = tmp_path / "foreign.invcap"
    header = {"invisproxy_capture": 1, "created": 1.0, "nan": float("nan"), b"raw": b"\xffbytes"}
    packer = msgpack.Packer(use_bin_type=True)
    cap.write_bytes(packer.pack(header) + packer.pack({"t": 1.0, "conn": "c", "event": "close"}))
    out = tmp_path / "foreign.jsonl"
    assert main(["export", str(cap), "-o", str(out)]) == 0
    first = json.loads(out.read_text().splitlines()[0])
    # JSON has no bytes and no NaN: they are tagged (records.META_TAGS), not turned to text
    assert first == {
        "invisproxy_trace": 1,
        "created": 1.0,
        "nan": {"$float": "nan"},
        "$map": [[{"$bytes": "cmF3"}, {"$bytes": "/2J5dGVz"}]],
    }
    again = tmp_path / "again.invcap"
    assert main(["import", str(out), "-o", str(again)]) == 0
    with read_capture(again) as loaded:
        assert list(loaded.meta) == ["created", "nan", b"raw"]
        meta: dict[Any, object] = dict(loaded.meta)  # keys of any type, as written
        assert meta[b"raw"] == b"\xffbytes"
        nan = meta["nan"]
        assert isinstance(nan, float) and math.isnan(nan)
    # a hand-edited trace: an integer msgpack cannot hold, a string UTF-8 cannot
    trace = tmp_path / "big.jsonl"
    trace.write_text(
        '{"invisproxy_trace": 1, "big": 123456789012345678901234567890, "odd": "\\ud800"}\n'
    )
    back = tmp_path / "big.invcap"
    assert main(["import", str(trace), "-o", str(back)]) == 0
    with read_capture(back) as loaded:
        assert loaded.meta == {"big": 123456789012345678901234567890, "odd": "\ud800"}
    exported = tmp_path / "big2.jsonl"
    assert main(["export", str(back), "-o", str(exported)]) == 0
    assert exported.read_text() == trace.read_text()
    assert capsys.readouterr().err == ""


# --------------------------------------------------------------------------- redaction

# Issue 8's forms: an escaped password, escaped slashes in the URL, an '@' in the URL's
# password, a numeric and an object password, duplicate keys, and a frame made invalid
# by a NaN elsewhere in it.
_SECRET_FRAMES = [
    b'{"sn":"11B27540076","packetID":221040,"PUBACK":1,"payload":{"callbackName":1,'
    b'"callbackArgs":{"sys_prefs":{"mqtt":{"mqtt_broker_url":"mqtt:\\/\\/bob:pw@x@broker",'
    b'"user":"habob","pass":"PASS\\u0053ECRET","pass":"dupsecret"},'
    b'"internet":{"ip":"192.168.7.9"}}}}}\n',
    b'{"packetID":221041,"payload":{"callbackName":2,"callbackArgs":'
    b'[{"sys_prefs":{"mqtt":{"pass":987654321987}}}]}}\n',
    b'{"packetID":221042,"payload":{"callbackName":2,"callbackArgs":'
    b'[{"sys_prefs":{"mqtt":{"pass":{"k":"objsecret"}}}}]}}\n',
    b'{"packetID":221043,"payload":{"callbackName":2,"callbackArgs":'
    b'[{"sys_prefs":{"mqtt":{"pass":"nansecret","qos":NaN}}}]}}\n',
]
_GONE = ["PASSSECRET", "PASS\\u0053ECRET", "dupsecret", "habob", "bob:pw", "x@broker"]
_GONE += ["987654321987", "objsecret", "nansecret"]


@pytest.fixture
def secrets_trace(tmp_path: Path) -> Path:
    path = tmp_path / "secrets.jsonl"
    events: list[Event] = [Open(0.0, "c1", "tcp", "192.168.7.20:50122", "192.168.7.9:3333")]
    for i, raw in enumerate(_SECRET_FRAMES):
        side = "outlet" if b'"callbackName":1' in raw else "app"
        # cut each frame in three, as TCP may
        third = len(raw) // 3
        for j, piece in enumerate((raw[:third], raw[third : 2 * third], raw[2 * third :])):
            events.append(Data(0.1 * i + 0.01 * j, "c1", side, piece))  # type: ignore[arg-type]
    events.append(Close(9.0, "c1", "outlet"))
    write_trace(path, {"outlet": "192.168.7.9"}, events)
    assert b"dupsecret" in path.read_bytes() and b"objsecret" in path.read_bytes()
    return path


def _assert_no_secret(text: str) -> None:
    for g in _GONE:
        assert g not in text, g
    # and not decoded from an escape either
    assert "PASSSECRET" not in text.encode().decode("unicode_escape", "ignore")


@pytest.mark.parametrize("fmt", ["trace", "jsonl", "capture"])
def test_export_redact_covers_every_format_and_lists_each_removal(
    secrets_trace: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], fmt: str
) -> None:
    out = tmp_path / f"out.{fmt}"
    assert main(["export", "--redact", str(secrets_trace), "--format", fmt, "-o", str(out)]) == 0
    said = capsys.readouterr().out
    if fmt == "capture":
        events = events_of(out)
        text = "\n".join(e.data.decode("utf-8", "replace") for e in events if isinstance(e, Data))
    else:
        text = out.read_text()
    _assert_no_secret(text)
    for line in [
        "message 0 (cb1 from the outlet, c1, t=0.020): sys_prefs.mqtt.mqtt_broker_url",
        "message 0 (cb1 from the outlet, c1, t=0.020): sys_prefs.mqtt.user",
        "message 0 (cb1 from the outlet, c1, t=0.020): sys_prefs.mqtt.pass (duplicate 1 of 2)",
        "message 0 (cb1 from the outlet, c1, t=0.020): sys_prefs.mqtt.pass (duplicate 2 of 2)",
        "message 1 (cb2 from the app, c1, t=0.120): [0].sys_prefs.mqtt.pass",
        "message 2 (cb2 from the app, c1, t=0.220): [0].sys_prefs.mqtt.pass",
        "message 3 (invalid frame from the app, c1, t=0.320): pass (invalid frame",
    ]:
        assert line in said, said
    assert "redacted 7 secret(s) in 4 message(s)" in said
    _assert_no_secret(said)


def test_analyze_redact_json_has_no_secret_and_reports_on_stderr(
    secrets_trace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["analyze", str(secrets_trace), "--json"]) == 0
    clear = capsys.readouterr().out
    assert "dupsecret" in clear and "objsecret" in clear, "without --redact: as captured"
    assert main(["analyze", str(secrets_trace), "--redact", "--json"]) == 0
    captured = capsys.readouterr()
    _assert_no_secret(captured.out)
    doc = json.loads(captured.out)
    mqtt = doc["messages"][0]["args"]["sys_prefs"]["mqtt"]
    assert mqtt == {
        "mqtt_broker_url": "mqtt://<redacted>@broker",
        "user": "<redacted>",
        "pass": "<redacted>",
    }
    assert "message 0 (cb1" in captured.err
    # the timeline form too
    assert main(["analyze", str(secrets_trace), "--redact"]) == 0
    _assert_no_secret(capsys.readouterr().out)


def test_redact_all_replaces_identifiers_everywhere(
    secrets_trace: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "public.jsonl"
    assert main(["export", str(secrets_trace), "--redact=all", "-o", str(out)]) == 0
    said = capsys.readouterr().out
    assert "1 serial numbers, 0 MAC addresses, 2 IP addresses, 0 SSIDs" in said
    text = out.read_text()
    _assert_no_secret(text)
    for ident in ("11B27540076", "192.168.7.9", "192.168.7.20"):
        assert ident not in text
    assert '"outlet": "198.18.0.2:3333"' in text and "SN-1" in text
    header = json.loads(text.splitlines()[0])
    assert header["outlet"] == "198.18.0.2" and header["pseudonymised"]["serial numbers"] == 1
    assert main(["analyze", str(secrets_trace), "--redact=all", "--json"]) == 0
    doc = capsys.readouterr().out
    for ident in ("11B27540076", "192.168.7.9", "192.168.7.20"):
        assert ident not in doc


@pytest.mark.parametrize("command", ["export", "analyze"])
def test_redact_takes_no_other_value(
    secrets_trace: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    assert main([command, str(secrets_trace), "--redact=some"]) == 2
    assert "--redact" in capsys.readouterr().err


def test_export_help_says_chunk_boundaries_may_move(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "chunk boundaries inside that message may move" in text
    assert "--redact=all" in text


def test_import_of_a_string_no_capture_can_hold_reports_the_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """It crashed the import with a UnicodeEncodeError from msgpack."""
    trace = tmp_path / "surrogate.jsonl"
    trace.write_text(
        '{"t": 1.0, "conn": "\\ud800", "event": "close"}\n'
        '{"t": 2.0, "conn": "c", "event": "close"}\n'
    )
    out = tmp_path / "s.invcap"
    assert main(["import", str(trace), "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert "line 1: field 'conn' holds an unpaired surrogate, not UTF-8; line skipped" in err
    with read_capture(out) as loaded:
        assert [e.conn for e in loaded.events] == ["c"]
