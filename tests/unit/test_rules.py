"""The rule language: DESIGN 4.5's examples literally, errors with columns, files, limits, sets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from proxy.core.events import Data, Side
from proxy.core.framing import Framer
from proxy.core.model import Message, Row
from proxy.core.protocol import decode
from proxy.core.rules import (
    Action,
    Rule,
    RuleError,
    RuleSet,
    combine,
    load_rules,
    parse_rule,
)
from tests.support import error_at

EXAMPLES = Path(__file__).resolve().parents[1] / "data" / "protocol_examples"


def decoded(raw: bytes, side: Side) -> Message:
    frames = Framer().feed(Data(1.0, "c1", side, raw))
    assert len(frames) == 1
    return decode(frames[0], 0, "tcp")


def example(name: str, side: Side) -> Message:
    return decoded((EXAMPLES / name).read_bytes(), side)


def ota(cb: int, args: list[Any], side: Side = "outlet") -> Message:
    body = {
        "sn": "0003D44076",
        "packetID": 301552,
        "payload": {"callbackName": cb, "callbackArgs": args},
    }
    return decoded(json.dumps(body).encode(), side)


def text_of(row: Row, msg: Message | None) -> str:
    return "" if msg is None else msg.raw.decode()


def row(msg: Message) -> Row:
    return Row(msg.t, "message", msg.conn, msg.id)


def holds(rule: Rule, msg: Message) -> bool:
    return rule.match(row(msg), msg, text_of)


# --------------------------------------------------------------------- DESIGN 4.5


def test_refuse_the_update_as_the_outlet() -> None:
    rule = parse_rule("cb:21 dir:app -> reply puback=0")
    assert rule.action == Action("reply", fields=((("PUBACK",), 0),), text="reply puback=0")
    assert (rule.times, rule.after) == (None, 0)
    assert holds(rule, example("cb21-request.json", "app"))
    assert not holds(rule, example("cb21-response-revb-sync.json", "outlet"))
    assert rule.action.reply_object(414883, "11B27540076") == {
        "sn": "11B27540076",
        "packetID": 414883,
        "PUBACK": 0,
    }


def test_lose_the_revb_synchronous_status() -> None:
    rule = parse_rule("cb:21 dir:outlet -> drop")
    assert rule.action.kind == "drop"
    assert holds(rule, example("cb21-response-revb-sync.json", "outlet"))
    assert not holds(rule, example("cb21-request.json", "app"))


def test_progress_stops_at_30() -> None:
    rule = parse_rule("cb:22 arg.1:40-100 -> drop")
    assert rule.action.kind == "drop"
    assert [p for p in range(0, 101, 10) if holds(rule, ota(22, [1, p]))] == list(
        range(40, 101, 10)
    )
    assert holds(rule, example("cb22-progress.json", "outlet"))  # 90 %
    assert not holds(rule, ota(23, [1, 50]))


def test_success_becomes_failure() -> None:
    rule = parse_rule("cb:23 arg.0:1 arg.1:1 -> set payload.callbackArgs.1=0")
    assert rule.action.kind == "set"
    assert rule.action.fields == ((("payload", "callbackArgs", 1), 0),)
    result = example("cb23-result.json", "outlet")
    assert holds(rule, result)
    assert not holds(rule, ota(23, [1, 0]))
    assert not holds(rule, ota(23, [2, 1]))
    value = json.loads(result.raw)
    changed = rule.action.apply_set(value)
    assert changed["payload"]["callbackArgs"] == [1, 0]
    assert value["payload"]["callbackArgs"] == [1, 1]  # a copy: what was received stays
    assert {k: v for k, v in changed.items() if k != "payload"} == {
        k: v for k, v in value.items() if k != "payload"
    }


def test_delay_progress() -> None:
    rule = parse_rule("cb:22 -> delay 5")
    assert (rule.action.kind, rule.action.seconds) == ("delay", 5.0)
    assert holds(rule, example("cb22-progress.json", "outlet"))


def test_close_once_mid_download() -> None:
    rule = parse_rule("cb:22 arg.1:50-100 -> close once")
    assert (rule.action.kind, rule.times, rule.after) == ("close", 1, 0)
    assert rule.text == "cb:22 arg.1:50-100 -> close once"
    rules = RuleSet([rule])
    seen = [rules.first_match(row(m), m, text_of) for m in (ota(22, [1, p]) for p in (40, 50, 60))]
    assert seen == [None, rule, None]
    assert (rule.matched, rule.applied) == (2, 1)


def test_label_and_explain() -> None:
    rule = parse_rule("  cb:22   arg.1:40-100  ->  drop  ", 3)
    assert rule.text == "cb:22   arg.1:40-100 -> drop"
    assert rule.label == "rule 3: cb:22   arg.1:40-100 -> drop"
    assert rule.explain() == "dropped by rule 3: cb:22   arg.1:40-100 -> drop"
    assert parse_rule("cb:22 -> delay 2.5").explain().startswith("delayed 2.5 s by rule 1")


# --------------------------------------------------------------------- actions


def test_reply_values_are_json_or_bare_words() -> None:
    rule = parse_rule(
        'cb:21 -> reply payload.callbackName=21 payload.callbackArgs=[1, 0] sn=ABC x="a b"'
    )
    assert rule.action.fields == (
        (("payload", "callbackName"), 21),
        (("payload", "callbackArgs"), [1, 0]),
        (("sn",), "ABC"),
        (("x",), "a b"),
    )
    reply = rule.action.reply_object(7, "SN1")
    assert list(reply) == ["sn", "packetID", "payload", "x"]
    assert reply == {
        "sn": "ABC",
        "packetID": 7,
        "payload": {"callbackName": 21, "callbackArgs": [1, 0]},
        "x": "a b",
    }


def test_reply_nested_and_indexed_paths() -> None:
    action = parse_rule("cb:21 -> reply payload.callbackName=21 payload.callbackArgs.1=0").action
    assert action.reply_object(1, None) == {
        "sn": None,
        "packetID": 1,
        "payload": {"callbackName": 21, "callbackArgs": [None, 0]},
    }
    # the object is fresh each time: changing one reply leaves the next alone
    first = action.reply_object(1, None)
    first["payload"]["callbackArgs"].append(9)
    assert action.reply_object(1, None)["payload"]["callbackArgs"] == [None, 0]


def test_nan_is_a_word_not_a_number() -> None:
    assert parse_rule("cb:21 -> reply x=NaN").action.fields == ((("x",), "NaN"),)


@pytest.mark.parametrize(
    ("rule", "value", "why"),
    [
        (
            "cb:23 -> set payload.callbackArgs.2=0",
            {"payload": {"callbackArgs": [1, 1]}},
            "2 element",
        ),
        ("cb:23 -> set payload.nope=0", {"payload": {"callbackArgs": [1, 1]}}, "no 'nope'"),
        ("cb:23 -> set puback=0", {"packetID": 1}, "no 'PUBACK'"),
        (
            "cb:23 -> set payload.callbackArgs.0=0",
            {"payload": {"callbackArgs": {"a": 1}}},
            "not a list",
        ),
        ("cb:23 -> set payload.x=0", [1, 2], "not an object"),
    ],
)
def test_set_never_adds_what_the_sender_did_not_send(rule: str, value: Any, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        parse_rule(rule).action.apply_set(value)


def test_set_puback_uses_the_wire_key() -> None:
    action = parse_rule("cb:21 -> set puback=0").action
    assert action.apply_set({"sn": "s", "packetID": 2, "PUBACK": 1}) == {
        "sn": "s",
        "packetID": 2,
        "PUBACK": 0,
    }
    with pytest.raises(ValueError, match="not a set action"):
        parse_rule("cb:21 -> drop").action.apply_set({})


# --------------------------------------------------------------------- errors


def test_error_text_names_the_rule_the_column_and_the_actions() -> None:
    with pytest.raises(RuleError) as info:
        parse_rule("cb:22 arg.1:40-100 -> dorp")
    assert info.value.column == 23  # 1-based: 'dorp' starts at the 23rd character
    assert str(info.value) == (
        "rule 'cb:22 arg.1:40-100 -> dorp': unknown action 'dorp' at column 23; actions: drop, "
        "delay SECONDS, close, reply FIELD=VALUE..., set PATH=JSON; then once, times N or after N"
    )


@pytest.mark.parametrize(
    ("text", "column", "words"),
    [
        ("cb:22 drop", 11, "'->' is missing"),
        (" -> drop", 2, "MATCH is missing"),
        ("foo:1 -> drop", 1, "unknown field 'foo'"),
        ("cb:22 arg.x:1 -> drop", 11, "whole number"),
        ("cb:22 arg.1:9-3 -> drop", 13, "runs backwards"),
        ("cb:22 (dir:app -> drop", 15, "missing ')'"),
        ("cb:22 ->", 9, "action is missing"),
        ("cb:22 -> delay", 15, "delay needs SECONDS"),
        ("cb:22 -> delay 0", 16, "more than 0"),
        ("cb:22 -> delay 3601", 16, "at most 3600"),
        ("cb:22 -> delay soon", 16, "not a number"),
        ("cb:22 -> delay nan", 16, "more than 0"),
        ("cb:22 -> reply", 15, "reply needs FIELD=VALUE"),
        ("cb:22 -> reply once", 16, "reply needs FIELD=VALUE"),
        ("cb:22 -> set a=1 b=2", 18, "exactly one field"),
        ("cb:22 -> set =1", 14, "field name is missing"),
        ("cb:22 -> set a..b=1", 16, "bad field name"),
        ("cb:22 -> set 1=1", 14, "starts with a key"),
        ("cb:22 -> set a= once", 16, "value is missing"),
        ("cb:22 -> reply x=[1,", 18, "bad JSON value"),
        ('cb:22 -> reply x="a', 18, "bad JSON value"),
        ("cb:22 -> drop times", 20, "times needs a whole number"),
        ("cb:22 -> drop times x", 21, "times needs a whole number"),
        ("cb:22 -> drop after 0", 21, "at least 1"),
        ("cb:22 -> drop once once", 20, "twice"),
        ("cb:22 -> drop once times 2", 20, "twice"),
        ("cb:22 -> drop after 1 after 2", 23, "twice"),
        ("cb:22 -> drop later", 15, "unexpected 'later'"),
    ],
)
def test_error_columns(text: str, column: int, words: str) -> None:
    error = error_at(RuleError, parse_rule, text, column, words)
    assert f"at column {column}" in str(error)


def test_match_errors_list_the_known_terms() -> None:
    with pytest.raises(RuleError) as info:
        parse_rule("cb:22 ( -> drop")
    assert "terms: cb:, dir:" in str(info.value)
    assert "arg.N:" in str(info.value)
    with pytest.raises(RuleError) as info:
        parse_rule("nosuch:1 -> drop")
    assert "known fields: cb, dir" in str(info.value)


def test_arrow_inside_a_quoted_match_value_is_not_the_arrow() -> None:
    rule = parse_rule('"a->b" -> drop')
    assert rule.match.expression == '"a->b"'


# --------------------------------------------------------------------- limits and sets


def progress(p: int) -> Message:
    return ota(22, [1, p])


def run(rules: RuleSet, msgs: list[Message]) -> list[int | None]:
    return [(r.number if (r := rules.first_match(row(m), m, text_of)) else None) for m in msgs]


def test_times_and_after() -> None:
    msgs = [progress(10)] * 6
    assert run(RuleSet([parse_rule("cb:22 -> drop times 3")]), msgs) == [1, 1, 1, None, None, None]
    assert run(RuleSet([parse_rule("cb:22 -> drop after 2")]), msgs) == [None, None, 1, 1, 1, 1]
    both = parse_rule("cb:22 -> drop after 2 times 1")
    assert run(RuleSet([both]), msgs) == [None, None, 1, None, None, None]
    assert (both.matched, both.applied) == (6, 1)


def test_first_enabled_rule_wins_and_a_spent_one_lets_the_next_act() -> None:
    rules = RuleSet([parse_rule("cb:22 -> close once", 1), parse_rule("cb:22 -> delay 1", 2)])
    assert run(rules, [progress(1), progress(2), progress(3)]) == [1, 2, 2]
    assert rules.stats() == [
        ("rule 1: cb:22 -> close once", True, 3, 1),
        ("rule 2: cb:22 -> delay 1", True, 2, 2),
    ]


def test_toggle_and_generation() -> None:
    rules = RuleSet([parse_rule("cb:22 -> drop", 1)])
    g = rules.generation
    assert rules.toggle(1) is False
    assert rules.generation > g
    assert run(rules, [progress(5)]) == [None]
    assert rules.rules[0].matched == 0  # matched counts only while enabled
    assert rules.toggle(1) is True
    g = rules.generation
    assert run(rules, [progress(5)]) == [1]
    assert rules.generation > g
    with pytest.raises(ValueError, match="no rule 9"):
        rules.toggle(9)


def test_no_match_does_not_move_the_generation() -> None:
    rules = RuleSet([parse_rule("cb:23 -> drop")])
    g = rules.generation
    assert run(rules, [progress(5)]) == [None]
    assert rules.generation == g
    assert not RuleSet([]) and len(rules) == 1


def test_not_applied_uncounts() -> None:
    rules = RuleSet([parse_rule("cb:22 -> set payload.nope=1")])
    rule = rules.first_match(row(progress(1)), progress(1), text_of)
    assert rule is not None
    rules.not_applied(rule)
    assert (rule.matched, rule.applied) == (1, 0)


def test_replace_keeps_state_of_unchanged_rules() -> None:
    rules = RuleSet([parse_rule("cb:22 -> drop", 1), parse_rule("cb:23 -> drop", 2)])
    run(rules, [progress(1), progress(2)])
    rules.toggle(2)
    g = rules.generation
    rules.replace([parse_rule("cb:23   ->   drop", 1), parse_rule("cb:22 -> delay 1", 2)])
    assert rules.generation > g
    new23, new22 = rules.rules
    assert (new23.enabled, new23.matched, new23.applied) == (False, 0, 0)  # same text: switched off
    assert (new22.enabled, new22.matched) == (True, 0)  # new action: a new rule
    rules.replace([parse_rule("cb:23 -> drop", 1)])
    assert rules.rules[0].enabled is False


def test_replace_keeps_counts() -> None:
    rules = RuleSet([parse_rule("cb:22 -> drop", 1)])
    run(rules, [progress(1), progress(2)])
    rules.replace([parse_rule("cb:21 -> drop", 1), parse_rule("cb:22 -> drop", 2)])
    assert [(r.number, r.matched, r.applied) for r in rules.rules] == [(1, 0, 0), (2, 2, 2)]


# --------------------------------------------------------------------- files


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rules.toml"
    path.write_text(text)
    return path


def test_load_rules(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
[[rule]]
match = "cb:21 dir:app"
action = "reply puback=0"

[[rule]]
match = "cb:22 arg.1:50-100"
action = "close once"
enabled = false
""",
    )
    rules = load_rules(path)
    assert [(r.number, r.text, r.enabled, r.source) for r in rules] == [
        (1, "cb:21 dir:app -> reply puback=0", True, str(path)),
        (2, "cb:22 arg.1:50-100 -> close once", False, str(path)),
    ]
    assert [r.number for r in load_rules(path, first_number=4)] == [4, 5]
    both = combine(["cb:22 -> delay 5"], rules)
    assert [(r.number, r.text) for r in both] == [
        (1, "cb:22 -> delay 5"),
        (2, "cb:21 dir:app -> reply puback=0"),
        (3, "cb:22 arg.1:50-100 -> close once"),
    ]
    assert both[2].enabled is False
    assert rules[0].number == 1  # combine numbers copies


def test_load_rules_accepts_rules_tables_and_an_empty_file(tmp_path: Path) -> None:
    path = write(tmp_path, '[[rules]]\nmatch = "cb:22"\naction = "drop"\n')
    assert [r.text for r in load_rules(path)] == ["cb:22 -> drop"]
    assert load_rules(write(tmp_path, "# nothing yet\n")) == []


def test_bad_toml_says_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, '[[rule]]\nmatch = "cb:22"\naction drop\n')
    with pytest.raises(RuleError) as info:
        load_rules(path)
    text = str(info.value)
    assert text.startswith(f"{path}: not valid TOML")
    assert "line 3" in text and "column" in text


def test_bad_rule_in_a_file_names_file_table_and_column(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[[rule]]\nmatch = "cb:22"\naction = "drop"\n\n'
        '[[rule]]\nmatch = "cb:22 arg.1:40-100"\naction = "dorp"\n',
    )
    with pytest.raises(RuleError) as info:
        load_rules(path)
    assert info.value.column == 23
    assert str(info.value).startswith(
        f"{path}, [[rule]] 2: rule 'cb:22 arg.1:40-100 -> dorp': unknown action 'dorp' at column 23"
    )


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ('[[rule]]\naction = "drop"\n', "'match' is missing"),
        ('[[rule]]\nmatch = "cb:22"\n', "'action' is missing"),
        ('[[rule]]\nmatch = 22\naction = "drop"\n', "'match' must be a string"),
        (
            '[[rule]]\nmatch = "cb:22"\naction = "drop"\nenabled = "no"\n',
            "'enabled' must be true or false",
        ),
        ('[[rule]]\nmatch = "cb:22"\naction = "drop"\nenabeld = false\n', "unknown key 'enabeld'"),
        ('[[rule]]\nmatch = "cb:22 -> drop"\naction = "drop"\n', "'match' holds '->'"),
        ('[rule]\nmatch = "cb:22"\naction = "drop"\n', "write [[rule]]"),
        ('match = "cb:22"\n', "unknown top-level key 'match'"),
        (
            '[[rule]]\nmatch = "cb:1"\naction = "drop"\n'
            '[[rules]]\nmatch = "cb:2"\naction = "drop"\n',
            "both",
        ),
    ],
)
def test_file_mistakes(tmp_path: Path, body: str, words: str) -> None:
    path = write(tmp_path, body)
    with pytest.raises(RuleError) as info:
        load_rules(path)
    assert words in str(info.value)
    assert str(path) in str(info.value)


def test_missing_and_binary_files(tmp_path: Path) -> None:
    with pytest.raises(RuleError, match="cannot read the rules file"):
        load_rules(tmp_path / "absent.toml")
    path = tmp_path / "bin.toml"
    path.write_bytes(b"\xff\xfe")
    with pytest.raises(RuleError, match="not UTF-8"):
        load_rules(path)


# --------------------------------------------------------------------- round trip

matches = st.sampled_from(
    [
        "cb:22",
        "cb:21 dir:app",
        "cb:22 arg.1:40-100",
        "cb:23 arg.0:1 arg.1:1",
        "not kind:push",
        '"a b"',
    ]
)
paths = st.sampled_from(
    [
        "puback",
        "sn",
        "packetID",
        "payload.callbackName",
        "payload.callbackArgs",
        "payload.callbackArgs.1",
    ]
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**6), 10**6) | st.text('ab "\\é', max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=6,
)


def value_text(value: Any, bare: bool) -> str:
    """A value as a person might write it: JSON, or a bare word for a plain string."""
    if bare and isinstance(value, str) and value.isalpha():
        try:
            json.loads(value)
        except ValueError:
            return value
    return json.dumps(value, indent=None)


@st.composite
def actions(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["drop", "delay", "close", "reply", "set"]))
    if kind == "delay":
        seconds = draw(st.floats(min_value=1e-6, max_value=3600, allow_nan=False))
        return f"delay {seconds!r}"
    if kind in ("reply", "set"):
        n = 1 if kind == "set" else draw(st.integers(1, 3))
        items = [
            f"{draw(paths)}={value_text(draw(json_values), draw(st.booleans()))}" for _ in range(n)
        ]
        return " ".join([kind, *items])
    return kind


limits = st.sampled_from(["", " once", " times 3", " after 2", " after 2 times 1", " once after 4"])


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(match=matches, action=actions(), limit=limits)
def test_normalised_text_parses_back_the_same(match: str, action: str, limit: str) -> None:
    first = parse_rule(f"{match} -> {action}{limit}")
    again = parse_rule(first.text)
    assert again.text == first.text
    assert again.action == first.action
    assert (again.times, again.after) == (first.times, first.after)
    assert again.match.expression == first.match.expression


def test_hostile_nesting_is_an_error_not_a_crash() -> None:
    with pytest.raises(RuleError, match="too deeply nested"):
        parse_rule("(" * 5000 + "cb:22" + ")" * 5000 + " -> drop")
    with pytest.raises(RuleError, match="bad JSON value"):
        parse_rule("cb:22 -> reply x=" + "[" * 100000)


def test_reply_fields_that_cannot_nest_are_refused_at_start() -> None:
    with pytest.raises(RuleError) as info:
        parse_rule("cb:21 -> reply payload.callbackArgs=[1] payload.callbackArgs.x=1")
    assert info.value.column == 16
    assert "is not an object" in info.value.message


def test_a_missing_parenthesis_names_both_columns_once_each() -> None:
    with pytest.raises(RuleError) as info:
        parse_rule("(cb:21 -> drop")
    assert str(info.value) == (
        "rule '(cb:21 -> drop': missing ')' at column 7; the '(' it would close is at column 1"
    )


def test_a_bad_value_of_a_known_field_is_not_followed_by_the_list_of_terms() -> None:
    """The message says what the field takes; the terms would only bury it."""
    with pytest.raises(RuleError) as info:
        parse_rule("dir:sideways -> drop")
    assert str(info.value) == (
        "rule 'dir:sideways -> drop': dir: 'sideways' is not app or outlet at column 5"
    )
