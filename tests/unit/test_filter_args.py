"""The filter's argument terms ``arg.N:VALUE`` / ``arg.N:LOW-HIGH`` on decoded frames."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from proxy.core.events import Data, Side
from proxy.core.filter import FIELDS, Filter, FilterError, help_text
from proxy.core.framing import Framer
from proxy.core.model import Message, Row
from proxy.core.protocol import decode
from tests.support import error_at

EXAMPLES = Path(__file__).resolve().parents[1] / "data" / "protocol_examples"


def decoded(raw: bytes, side: Side = "outlet") -> Message:
    """The message the relay would see: framed from the wire bytes, then decoded."""
    frames = Framer().feed(Data(1.0, "c1", side, raw))
    assert len(frames) == 1
    return decode(frames[0], 0, "tcp")


def with_args(args: Any, cb: int = 22) -> Message:
    body = {"sn": "X", "packetID": 1, "payload": {"callbackName": cb, "callbackArgs": args}}
    return decoded(json.dumps(body).encode())


def holds(expr: str, msg: Message) -> bool:
    row = Row(msg.t, "message", msg.conn, msg.id)
    return Filter.parse(expr)(row, msg, lambda r, m: "" if m is None else m.raw.decode())


def example(name: str, side: Side = "outlet") -> Message:
    return decoded((EXAMPLES / name).read_bytes(), side)


def test_progress_range_on_the_documented_example() -> None:
    progress = example("cb22-progress.json")  # callbackArgs [1, 90]
    assert holds("cb:22 arg.1:40-100", progress)
    assert holds("arg.1:90-90", progress)
    assert not holds("cb:22 arg.1:40-89", progress)
    assert not holds("cb:21 arg.1:40-100", progress)


def test_result_terms_on_the_documented_example() -> None:
    result = example("cb23-result.json")  # [1, 1]
    assert holds("cb:23 arg.0:1 arg.1:1", result)
    assert not holds("cb:23 arg.0:1 arg.1:0", result)


def test_numbers_compare_numerically_and_true_is_not_one() -> None:
    assert holds("arg.0:1", with_args([1.0]))
    assert holds("arg.0:1.0", with_args([1]))
    assert holds("arg.0:1e2", with_args([100]))
    assert not holds("arg.0:1", with_args([True]))
    assert not holds("arg.0:0", with_args([False]))
    assert not holds("arg.0:0-1", with_args([True]))
    assert not holds("arg.0:1", with_args(["1"]))


def test_json_literals_match_literals_only() -> None:
    assert holds("arg.0:true", with_args([True]))
    assert not holds("arg.0:true", with_args([1]))
    assert holds("arg.0:null", with_args([None]))
    assert not holds("arg.0:null", with_args([0]))


def test_strings_compare_case_insensitively_and_whole() -> None:
    assert holds("arg.1:ON", with_args([1, "on"]))
    assert not holds("arg.1:on", with_args([1, "only"]))
    assert not holds("arg.1:on", with_args([1, 5]))
    assert holds("arg.0:on-off", with_args(["ON-OFF"]))


def test_negative_and_decimal_ranges() -> None:
    assert holds("arg.0:-5--1", with_args([-3]))
    assert holds("arg.0:-5--1", with_args([-5]))
    assert not holds("arg.0:-5--1", with_args([0]))
    assert holds("arg.0:0.5-1.5", with_args([1.5]))
    assert not holds("arg.0:0.5-1.5", with_args([1.51]))
    assert holds("arg.0:-1-1", with_args([0]))


@pytest.mark.parametrize(
    "args",
    [None, {"0": 1}, "1", [], [5]],
    ids=["absent", "object", "string", "empty", "short"],
)
def test_args_that_are_not_a_long_enough_list_never_match(args: Any) -> None:
    assert not holds("arg.1:5", with_args(args))
    assert not holds("arg.1:0-100", with_args(args))
    assert holds("not arg.1:5", with_args(args))


def test_no_args_key_and_invalid_frames_do_not_match() -> None:
    assert not holds("arg.0:1", decoded(b'{"packetID": 1, "payload": {"callbackName": 12}}'))
    assert not holds("arg.0:1", decoded(b"[1, 2]"))


def test_lazy_arguments_are_read_from_raw() -> None:
    # sensor pushes keep their args LAZY in the decoder; the term must still see them
    push = with_args([7, 8], cb=11)
    assert holds("arg.1:8", push)


# Bad terms by the part that is wrong: (term, the column named, what the error says).
BAD_INDEX = [
    ("arg.x:1", 5, "whole number"),
    ("cb:22 arg.x:1", 11, "whole number"),
    ("arg:1", 1, "needs an index"),
    ("arg.-1:1", 5, "whole number"),
]
BAD_VALUE = [
    ("arg.1:", 1, "needs a value"),
    ("arg.1:9-3", 7, "runs backwards"),
    ("cb:22 arg.1:9-3", 13, "runs backwards"),
    ("arg.1:1-", 7, "neither a number nor a range"),
    ("arg.1:1-2-3", 7, "neither a number nor a range"),
]


@pytest.mark.parametrize(("expr", "column", "words"), [*BAD_INDEX, *BAD_VALUE])
def test_errors_say_where(expr: str, column: int, words: str) -> None:
    error_at(FilterError, Filter.parse, expr, column, words)


def test_listed_in_fields_and_help() -> None:
    assert "arg.N" in FIELDS
    assert "arg.N:" in help_text()
    with pytest.raises(FilterError, match=r"arg\.N"):
        Filter.parse("nosuch:1")


numbers = st.one_of(st.integers(-1000, 1000), st.floats(-1000, 1000, allow_nan=False))


@given(low=numbers, high=numbers, x=numbers)
def test_range_is_inclusive_numeric(low: float, high: float, x: float) -> None:
    low, high = min(low, high), max(low, high)
    expr = f"arg.0:{json.dumps(low)}-{json.dumps(high)}"
    assert holds(expr, with_args([x])) == (low <= x <= high)
