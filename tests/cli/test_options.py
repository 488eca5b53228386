"""The click layer: one meaning per flag name, the version, help wording, the spellings
of ``--redact``, and the old outlet port names of ``replay send``."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path

import click
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proxy.cli.main import build_cli, main
from proxy.cli.options import usage_error_text

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "captures" / "sample-deco-ota.invcap"
SCENARIO = ROOT / "tests" / "scenarios" / "revb_outlet_tcp.jsonl"
INVISPROXY = Path(sys.executable).parent / "invisproxy"


def commands() -> Iterator[tuple[str, click.Command]]:
    """Every command and subcommand, with its words (``replay send``)."""

    def walk(cmd: click.Command, words: list[str]) -> Iterator[tuple[str, click.Command]]:
        yield " ".join(words), cmd
        if isinstance(cmd, click.Group):
            for name, sub in cmd.commands.items():
                yield from walk(sub, [*words, name])

    yield from walk(build_cli(), [])


def test_the_tree_has_every_public_command() -> None:
    names = {words for words, _ in commands()}
    assert {"demo", "run", "view", "analyze", "import", "export", "sim"} <= names
    assert {"replay", "replay serve", "replay send"} <= names


def test_a_flag_name_means_one_thing_in_every_command() -> None:
    """Same option string: same value name and type everywhere it is shown."""
    meanings: dict[str, set[tuple[str | None, str]]] = defaultdict(set)
    for _, cmd in commands():
        for param in cmd.params:
            if isinstance(param, click.Option) and not param.hidden:
                for opt in param.opts:
                    meanings[opt].add((param.name, repr(param.type)))
    assert meanings["--tcp-port"] == {("tcp_port", "Port(listen=True)")}
    assert meanings["--outlet-tcp-port"] == {("outlet_tcp_port", "Port(listen=False)")}
    clashes = {opt: m for opt, m in meanings.items() if len(m) > 1}
    assert clashes == {}


@pytest.mark.parametrize("words", [w for w, _ in commands()])
def test_help_says_what_the_user_gets_not_where_it_is_written(
    words: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*words.split(), "--help"]) == 0
    text = capsys.readouterr().out
    assert text.startswith(f"usage: invisproxy {words}".rstrip())
    for internal in ("DESIGN", ".md", "README", "issue"):
        assert internal not in text, (words, internal)


def test_version_comes_from_the_installed_package(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"invisproxy {version('invisproxy')}\n"


def test_dash_h_is_help_too(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["analyze", "-h"]) == 0
    assert "usage: invisproxy analyze [OPTIONS] FILE" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["analyze"], "invisproxy analyze: error: the following arguments are required: FILE"),
        (["run"], "invisproxy run: error: the following arguments are required: --outlet"),
        (["run", "--outlet"], "invisproxy run: error: option '--outlet' requires an argument"),
        (["analyze", str(SAMPLE), "x", "y"], "error: unrecognized arguments: x y"),
        (["sim", "--tcp-port", "70000"], "error: argument --tcp-port: port must be 0..65535"),
        (["demo", "--ota-seconds", "nan"], "argument --ota-seconds: not a finite number: 'nan'"),
        (["sim", "--rev", "C"], "argument --rev: invalid choice: 'C' (choose from 'A', 'B')"),
        (["demo", "--record", "x", "--no-record"], "--record and --no-record exclude each other"),
        (["view", str(SAMPLE), "--follow", "--play"], "--follow and --play exclude each other"),
        (["replay"], "usage: invisproxy replay [OPTIONS] COMMAND"),
        (["analize"], "invisproxy: error: no such command: analize (did you mean analyze?)"),
        (["replay", "sned"], "invisproxy replay: error: no such command: sned (did you mean send"),
        (
            ["replay", "send", "F", "--outlet", "h", "--tcp-prt", "1"],
            "unrecognized arguments: --tcp-prt (did you mean --outlet-tcp-port?)\n",
        ),
    ],
)
def test_usage_errors_exit_2_naming_the_command(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


LEAVES = [(w, c) for w, c in commands() if w and not isinstance(c, click.Group)]
WORDS = sorted({o for _, c in LEAVES for p in c.params for o in getattr(p, "opts", [])})


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(LEAVES),
    st.lists(
        st.one_of(
            st.sampled_from(WORDS),
            st.sampled_from(WORDS).map(lambda w: w + "=x"),
            st.sampled_from(["--", "-", "--redact=all", "--redact=", "0", "-1", "nan", "A", "-x"]),
            st.sampled_from(WORDS).map(lambda w: w[:-1]),  # a typo: suggestions
            st.text(max_size=8),
        ),
        max_size=6,
    ),
)
def test_any_argv_parses_or_gets_a_one_line_error(
    leaf: tuple[str, click.Command], argv: list[str]
) -> None:
    """What the user types never reaches them as a traceback (only parsing runs here)."""
    words, cmd = leaf
    try:
        with cmd.make_context(f"invisproxy {words}", list(argv)):
            pass
    except click.UsageError as exc:
        text = usage_error_text(exc)
        assert text and "\n" not in text.strip()


# --- --redact and --redact=all ---------------------------------------------------------


def test_redact_before_the_file_leaves_the_file_positional(
    capsys: pytest.CaptureFixture[str],
) -> None:
    for flag in ("--redact", "--redact=all"):
        assert main(["analyze", flag, str(SCENARIO), "--json"]) == 0
        captured = capsys.readouterr()
        assert json.loads(captured.out)["messages"]
        assert "redact" in captured.err


def test_redact_all_pseudonymises_and_plain_redact_does_not(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["analyze", str(SCENARIO), "--redact", "--json"]) == 0
    plain = capsys.readouterr()
    assert main(["analyze", str(SCENARIO), "--redact=all", "--json"]) == 0
    pseudo = capsys.readouterr()
    assert "pseudonyms" not in plain.err and "redact=all: replaced by consistent" in pseudo.err
    sns = {m["sn"] for m in json.loads(pseudo.out)["messages"] if m.get("sn")}
    assert sns and all(sn.startswith("SN-") for sn in sns)
    kept = {m["sn"] for m in json.loads(plain.out)["messages"] if m.get("sn")}
    assert kept and not any(sn.startswith("SN-") for sn in kept)


def test_after_double_dash_redact_all_is_a_file_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["analyze", "--json", "--", "--redact=all"]) == 2
    assert "invisproxy analyze: error: --redact=all: no such file" in capsys.readouterr().err


# --- replay send: the outlet's ports -----------------------------------------------------


@pytest.fixture
def refusing_port() -> Iterator[int]:
    """A TCP port held by this test where nothing listens: connections are refused."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        yield held.getsockname()[1]


def _send(*args: str) -> subprocess.CompletedProcess[str]:
    argv = [str(INVISPROXY), "replay", "send", str(SAMPLE), "--outlet", "127.0.0.1"]
    argv += ["--transport", "tcp", "--no-record", *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("flag", ["--outlet-tcp-port", "--tcp-port"])
def test_replay_send_takes_the_outlet_port_by_its_name_or_the_old_one(
    flag: str, refusing_port: int
) -> None:
    done = _send(flag, str(refusing_port))
    assert done.returncode == 2, done.stderr
    assert f"cannot reach the outlet at 127.0.0.1:{refusing_port}" in done.stderr
    deprecated = [line for line in done.stderr.splitlines() if "deprecated" in line]
    if flag == "--tcp-port":
        assert deprecated == [
            "invisproxy replay send: warning: --tcp-port is deprecated here, use "
            "--outlet-tcp-port: elsewhere --tcp-port is a port to listen on"
        ]
    else:
        assert deprecated == []
    assert "Traceback" not in done.stderr


def test_replay_send_refuses_both_names_of_one_port(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["replay", "send", str(SAMPLE), "--outlet", "127.0.0.1"]
    assert main([*argv, "--ws-port", "81", "--outlet-ws-port", "82", "--no-record"]) == 2
    err = capsys.readouterr().err
    assert "--ws-port is the old name of --outlet-ws-port: give one" in err


def test_replay_send_help_shows_only_the_outlet_port_names(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["replay", "send", "--help"]) == 0
    text = capsys.readouterr().out
    assert "--outlet-tcp-port" in text and "--outlet-ws-port" in text
    assert " --tcp-port" not in text and " --ws-port" not in text


# --- a closed pipe ------------------------------------------------------------------------


def test_analyze_into_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    lines = ['{"t": 0.0, "conn": "c1", "event": "open", "transport": "tcp", '
             '"app": "a:1", "outlet": "b:2"}']  # fmt: skip
    for i in range(3000):  # a timeline far larger than a pipe's buffer
        frame = json.dumps({"packetID": i, "payload": {"callbackName": 9}}) + "\n"
        lines.append(json.dumps({"t": i / 100, "conn": "c1", "event": "data", "from": "app",
                                 "text": frame}))  # fmt: skip
    trace = tmp_path / "long.jsonl"
    trace.write_text("\n".join(lines) + "\n")
    proc = subprocess.Popen(
        [str(INVISPROXY), "analyze", str(trace)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.readline()
    proc.stdout.close()  # like `| head -1`
    err = proc.stderr.read()
    assert proc.wait(60) == 0
    assert b"Traceback" not in err and b"BrokenPipe" not in err
