"""The rules-file reloader: a good edit replaces the rules, a broken one keeps them."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from proxy.core.rules import RuleSet, combine, load_rules
from proxy.mitm.rules_file import ReloadOutcome, RulesFileWatcher, file_signature

WAIT = 30.0

ONE = '[[rule]]\nmatch = "cb:22 arg.1:40-100"\naction = "drop"\n'
TWO = ONE + '\n[[rule]]\nmatch = "cb:21 dir:app"\naction = "reply puback=0"\n'


def _start(path: Path, text: str, cli: tuple[str, ...] = ()) -> tuple[RuleSet, RulesFileWatcher]:
    path.write_text(text)
    signature = file_signature(path)
    rules = RuleSet(combine(cli, load_rules(path)))
    return rules, RulesFileWatcher(path, rules, cli_texts=cli, signature=signature)


def test_an_unchanged_file_is_not_read_again(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    rules, watcher = _start(path, ONE)
    generation = rules.generation
    assert watcher.check() is None
    assert watcher.outcomes == [] and rules.generation == generation


def test_a_good_edit_replaces_the_rules_and_keeps_the_counts_of_unchanged_ones(
    tmp_path: Path,
) -> None:
    path = tmp_path / "rules.toml"
    rules, watcher = _start(path, ONE, cli=("cb:23 -> drop",))
    kept = rules.rules[1]
    kept.matched, kept.applied = 4, 3
    rules.toggle(1)  # switched off by the user: stays off after the reload
    path.write_text(TWO)
    outcome = watcher.check()
    assert outcome is not None and outcome.kind == "reloaded"
    assert outcome.message == f"rules file {path} reloaded: 2 rules from it, 3 in all"
    assert [r.text for r in rules.rules] == [
        "cb:23 -> drop",
        "cb:22 arg.1:40-100 -> drop",
        "cb:21 dir:app -> reply puback=0",
    ]
    assert [r.number for r in rules.rules] == [1, 2, 3]
    assert rules.rules[0].enabled is False
    assert (rules.rules[1].matched, rules.rules[1].applied) == (4, 3)
    assert (rules.rules[2].matched, rules.rules[2].applied) == (0, 0)


def test_a_broken_edit_keeps_the_rules_in_use_and_says_where_the_mistake_is(
    tmp_path: Path,
) -> None:
    path = tmp_path / "rules.toml"
    said: list[ReloadOutcome] = []
    rules, watcher = _start(path, ONE)
    watcher.say = said.append
    before = list(rules.rules)
    path.write_text(ONE + '\n[[rule]]\nmatch = "cb:21"\naction = "explode now"\n')
    outcome = watcher.check()
    assert outcome is not None and outcome.kind == "kept"
    assert rules.rules == before
    assert said == [outcome]
    assert outcome.message.startswith(f"rules file {path} not reloaded: [[rule]] 2: ")
    assert "unknown action 'explode' at column 10" in outcome.message
    assert "actions: drop, delay SECONDS" in outcome.message
    assert outcome.message.endswith("still using the 1 rule in use")
    # said once per edit, not at every poll
    assert watcher.check() is None and len(said) == 1


def test_a_removed_file_keeps_the_rules_and_its_return_reloads_them(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    rules, watcher = _start(path, ONE)
    path.unlink()
    gone = watcher.check()
    assert gone is not None and gone.kind == "kept" and "cannot read" in gone.message
    assert len(rules) == 1
    path.write_text(TWO)
    back = watcher.check()
    assert back is not None and back.kind == "reloaded" and len(rules) == 2


def test_an_editor_that_saves_by_renaming_is_noticed(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    rules, watcher = _start(path, ONE)
    other = tmp_path / "rules.toml.new"
    other.write_text(ONE.replace("drop", "close"))  # same size, new inode
    other.replace(path)
    outcome = watcher.check()
    assert outcome is not None and outcome.kind == "reloaded"
    assert rules.rules[0].text == "cb:22 arg.1:40-100 -> close"


async def test_the_task_notices_an_edit_on_its_own(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    rules, watcher = _start(path, ONE)
    watcher.interval = 0.01
    watcher.start()
    try:
        path.write_text(TWO)
        outcome = await asyncio.wait_for(watcher.next_outcome(), WAIT)
        assert outcome.kind == "reloaded" and len(rules) == 2
        path.write_text("[[rule]]\nmatch = 'cb:22'\n")
        outcome = await asyncio.wait_for(watcher.next_outcome(), WAIT)
        assert outcome.kind == "kept" and "'action' is missing" in outcome.message
        assert len(rules) == 2
    finally:
        await watcher.stop()
    assert watcher.polls >= 2


@pytest.mark.parametrize("text", ["", "[[rule]]\nmatch = 'cb:22'\naction = 'drop'\n"])
def test_the_signature_changes_with_the_content(tmp_path: Path, text: str) -> None:
    path = tmp_path / "rules.toml"
    path.write_text("x" * 100)
    before = file_signature(path)
    path.write_text(text)
    assert file_signature(path) != before
    assert file_signature(tmp_path / "missing.toml") is None


class _Applied:
    def __init__(self) -> None:
        self.sets: list[RuleSet] = []

    def __call__(self, rules: RuleSet) -> None:
        self.sets.append(rules)


async def test_the_mitmproxy_option_refuses_a_bad_file_without_a_traceback(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from mitmproxy.exceptions import OptionsError

    from proxy.mitm.rules_file import OPTION, RulesOption

    bad = tmp_path / "bad.toml"
    bad.write_text('[[rule]]\nmatch = "cb:21"\naction = "explode"\n')
    applied = _Applied()
    stopped: list[int] = []
    option = RulesOption(applied, stop=stopped.append)
    # at startup: an error in the log, nothing applied, and the proxy stops with status 2
    # once mitmproxy says it is running
    with caplog.at_level("WARNING"):
        option.configure({OPTION}, str(bad))
    assert applied.sets == []
    (record,) = [r for r in caplog.records if r.levelname == "WARNING"]
    assert record.exc_info is None
    assert record.getMessage() == (
        f"invisproxy: invis_rules: {bad}, [[rule]] 1: rule 'cb:21 -> explode': unknown "
        "action 'explode' at column 10; actions: drop, delay SECONDS, close, "
        "reply FIELD=VALUE..., set PATH=JSON; then once, times N or after N"
    )
    option.running()
    assert stopped == [2]
    # once running: mitmproxy's OptionsError, which refuses the setting
    option.startup_error = None  # (as if the file had been good at startup)
    option.running()
    with pytest.raises(OptionsError, match="unknown action 'explode' at column 10"):
        option.configure({OPTION}, str(bad))
    good = tmp_path / "good.toml"
    good.write_text(ONE)
    option.configure({OPTION}, str(good))
    assert [len(s) for s in applied.sets] == [1]
    watcher = option.watcher
    assert watcher is not None
    was_running = watcher.running
    option.configure({OPTION}, "")  # unset: the file's rules go, the watcher stops
    assert [len(s) for s in applied.sets] == [1, 0] and option.watcher is None
    assert was_running and not watcher.running
    option.done()


def test_an_option_never_set_leaves_other_rules_alone() -> None:
    from proxy.mitm.rules_file import OPTION, RulesOption

    applied = _Applied()
    option = RulesOption(applied)
    option.configure({OPTION, "invis_capture"}, "")
    option.configure({"invis_capture"}, "")
    assert applied.sets == []
