"""The top-level command line: help, unknown flags, and that --help stays light."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from proxy.cli.main import COMMAND_MODULES, main


@pytest.mark.parametrize(
    ("argv", "who"),
    [
        (["analyze", "x.invcap", "--bogus"], "invisproxy analyze: error"),
        (["replay", "serve", "x.invcap", "--bogus"], "invisproxy replay serve: error"),
        (["--bogus"], "invisproxy: error"),
    ],
)
def test_an_unknown_flag_is_blamed_on_the_command_that_got_it(
    argv: list[str], who: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"{who}: unrecognized arguments: --bogus" in err


def test_no_command_prints_help_and_fails(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    out = capsys.readouterr().out
    listing = out.split("Commands:\n", 1)[1]
    listed = re.findall(r"^  ([a-z]+) ", listing, flags=re.M)
    assert listed == ["demo", "run", "view", "analyze", "import", "export", "sim", "replay"]


@pytest.mark.parametrize("command", [c for c in COMMAND_MODULES if c != "convert"])
def test_every_command_has_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([command, "--help"]) == 0
    assert f"usage: invisproxy {command}" in capsys.readouterr().out


def test_help_does_not_import_mitmproxy_or_textual() -> None:
    code = (
        "import sys\n"
        "from proxy.cli.main import main\n"
        "assert main(['--help']) == 0\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'mitmproxy', 'textual'}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip().endswith("[]")


INVISPROXY = Path(sys.executable).parent / "invisproxy"


def test_odd_but_valid_strings_never_break_the_output(tmp_path: Path) -> None:
    """A lone surrogate escape is valid JSON; every output must survive it."""
    trace = tmp_path / "odd.jsonl"
    lines = [
        {
            "t": 0.0,
            "conn": "c1",
            "event": "open",
            "transport": "tcp",
            "app": "a:1",
            "outlet": "b:2",
        },
        {
            "t": 0.1,
            "conn": "c1",
            "event": "data",
            "from": "outlet",
            "text": '{"sn":"\\ud800x","packetID":5,'
            '"payload":{"callbackName":9,"callbackArgs":[1,0]}}\n',
        },
    ]
    trace.write_text("".join(json.dumps(line) + "\n" for line in lines))
    for args in (["analyze", "--json"], ["analyze"], ["export", "--format", "jsonl"]):
        done = subprocess.run(
            [str(INVISPROXY), *args[:1], str(trace), *args[1:]], capture_output=True, timeout=60
        )
        assert done.returncode == 0, (args, done.stderr.decode(errors="replace"))
        assert b"Traceback" not in done.stderr
        if "--json" in args or "jsonl" in args:
            first = done.stdout.decode().splitlines()[0]
            doc = json.loads(first)
            sn = doc["messages"][0]["sn"] if "messages" in doc else doc["sn"]
            assert sn == "\ud800x"


def test_analyze_reports_an_absurd_time_with_its_line_and_exits_1(tmp_path: Path) -> None:
    """Issue 8 item 7: "t": 1e20 crashed analyze in time.localtime."""
    trace = tmp_path / "bitflip.jsonl"
    lines = [
        '{"t": 1700000000.0, "conn": "c1", "event": "open", "transport": "tcp", '
        '"app": "a:1", "outlet": "b:2"}',
        '{"t": 1e20, "conn": "c1", "event": "data", "from": "app", "text": "{}"}',
        '{"t": 1.99e139, "conn": "c1", "event": "close", "by": "app"}',
        '{"t": 1700000001.0, "conn": "c1", "event": "data", "from": "app", '
        '"text": "{\\"packetID\\":221040,\\"payload\\":{\\"callbackName\\":20}}"}',
    ]
    trace.write_text("\n".join(lines) + "\n")
    for extra in ([], ["--json"]):
        done = subprocess.run(
            [str(INVISPROXY), "analyze", str(trace), *extra], capture_output=True, timeout=60
        )
        err = done.stderr.decode()
        assert done.returncode == 1, err
        assert "Traceback" not in err
        assert err.splitlines() == [
            "invisproxy analyze: warning: line 2: field 't' is out of range: 1e+20 (a time is "
            "seconds from 0 up to 32503680000, the year 3000); line skipped",
            "invisproxy analyze: warning: line 3: field 't' is out of range: 1.99e+139 (a time "
            "is seconds from 0 up to 32503680000, the year 3000); line skipped",
        ]
        if extra:
            messages = json.loads(done.stdout)["messages"]
            assert [(m["t"], m["callback"]) for m in messages] == [(1700000001.0, 20)]
        else:
            assert "1 message on 1 connection" in done.stdout.decode()
