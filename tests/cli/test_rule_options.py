"""``--rule`` / ``--rules`` on run and demo: a mistake stops the command at start, with
the column and what may be written there, and never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from proxy.cli.main import build_cli, main

COMMANDS = [["run", "--outlet", "127.0.0.1", "--headless", "--no-record"], ["demo", "--headless"]]


def _fails(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == "" and "Traceback" not in err
    return err.splitlines()[-1]


def _rules_file(tmp_path: Path, text: str | None) -> Path:
    """Where ``--rules`` will read: a file holding ``text`` (None: no file there)."""
    path = tmp_path / "rules.toml"
    if text is not None:
        path.write_text(text)
    return path


@pytest.mark.parametrize("cmd", COMMANDS, ids=lambda c: c[0])
def test_an_unknown_action_is_refused_with_its_column_and_the_actions(
    cmd: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    line = _fails(capsys, [*cmd, "--rule", "cb:22 -> drop", "--rule", "cb:21 -> explode"])
    assert line == (
        f"invisproxy {cmd[0]}: error: argument --rule: rule 'cb:21 -> explode': unknown "
        "action 'explode' at column 10; actions: drop, delay SECONDS, close, "
        "reply FIELD=VALUE..., set PATH=JSON; then once, times N or after N"
    )


@pytest.mark.parametrize("cmd", COMMANDS, ids=lambda c: c[0])
def test_an_unknown_term_is_refused_with_its_column_and_the_terms(
    cmd: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    line = _fails(capsys, [*cmd, "--rule", "cb:22 colour:red -> drop"])
    assert line == (
        f"invisproxy {cmd[0]}: error: argument --rule: rule 'cb:22 colour:red -> drop': "
        "unknown field 'colour' at column 7; known fields: cb, dir, conn, kind, ann, sev, pid, "
        "tr, text, arg.N"
    )


def test_a_missing_arrow_points_past_the_end(capsys: pytest.CaptureFixture[str]) -> None:
    line = _fails(capsys, [*COMMANDS[0], "--rule", "cb:22 drop"])
    assert "'->' is missing at column 11" in line and "write MATCH -> ACTION" in line


def test_a_bad_rule_in_the_file_names_the_file_and_the_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _rules_file(
        tmp_path,
        '[[rule]]\nmatch = "cb:22"\naction = "drop"\n\n'
        '[[rule]]\nmatch = "cb:23"\naction = "delay soon"\n',
    )
    line = _fails(capsys, [*COMMANDS[0], "--rules", str(path)])
    assert line == (
        f"invisproxy run: error: argument --rules: {path}, [[rule]] 2: rule "
        "'cb:23 -> delay soon': delay: 'soon' is not a number of seconds at column 16"
    )


@pytest.mark.parametrize(
    ("text", "says"),
    [
        (None, "cannot read the rules file"),
        ("[[rule]\n", "not valid TOML"),
        ('[[rule]]\nmatch = "cb:22"\n', "'action' is missing"),
        ('rule = "cb:22 -> drop"\n', "must be a list of tables"),
    ],
)
def test_a_rules_file_that_is_not_one_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str | None, says: str
) -> None:
    path = _rules_file(tmp_path, text)
    line = _fails(capsys, [*COMMANDS[1], "--rules", str(path)])
    assert line.startswith(f"invisproxy demo: error: argument --rules: {path}")
    assert says in line


def test_the_file_is_read_even_when_a_command_line_rule_is_fine(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _rules_file(tmp_path, '[[rule]]\nmatch = "cb:22 -> drop"\naction = "drop"\n')
    line = _fails(capsys, [*COMMANDS[0], "--rule", "cb:21 -> drop", "--rules", str(path)])
    assert "'match' holds '->'" in line


@pytest.mark.parametrize("name", ["run", "demo"])
def test_help_explains_the_syntax_with_an_example(name: str) -> None:
    command = build_cli().commands[name]
    helps = {p.name: getattr(p, "help", "") or "" for p in command.params}
    assert "--rule 'cb:21 dir:app -> reply puback=0'" in helps["rule_texts"]
    assert (
        "arg.N:LOW-HIGH" in helps["rule_texts"]
        and "once, times N or after N" in helps["rule_texts"]
    )
    assert "[[rule]]" in helps["rules_file"] and "reloaded" in helps["rules_file"]
    assert "DESIGN" not in helps["rule_texts"] + helps["rules_file"]
