"""The filter language on hand-made rows: every field, the operators, and the errors."""

from __future__ import annotations

import pytest

from proxy.core.filter import Filter, FilterError
from proxy.core.model import Message, Row
from tests.support import error_at
from tests.tui.conftest import build_message as msg

MESSAGES = [
    msg(0, cb=20, name="Request available updates", pid=221040),
    msg(1, cb=20, name="Request available updates", side="outlet", kind="response", pid=221040),
    msg(2, cb=21, pid=414883, anns=(("fire-and-forget", "info"),)),
    msg(
        3,
        cb=23,
        name="OTA result",
        side="outlet",
        kind="push",
        conn="c2",
        pid=301552,
        anns=(("spurious-ota-result", "warning"),),
        transport="ws",
    ),
    msg(4, cb=22, name="OTA download progress", side="outlet", kind="push", conn="c2", pid=1),
    msg(
        5,
        cb=None,
        name="",
        side="outlet",
        kind="invalid",
        conn="c12",
        pid=None,
        anns=(("invalid-json", "error"),),
        raw=b"garbage{",
    ),
]
ROWS = [Row(0.0, "open", "c1", -1)] + [Row(m.t, "message", m.conn, m.id) for m in MESSAGES]
ROWS.append(Row(9.0, "close", "c2", -1))


def text_of(row: Row, m: Message | None) -> str:
    if m is None:
        return f"connection {row.kind}"
    return f"{m.name} {m.raw.decode('utf-8', 'replace')}"


def shown(expr: str) -> list[str]:
    flt = Filter.parse(expr)
    out = []
    for row in ROWS:
        m = MESSAGES[row.ref] if row.ref >= 0 else None
        if flt(row, m, text_of):
            out.append(f"#{row.ref}" if row.ref >= 0 else row.kind)
    return out


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("", ["open", "#0", "#1", "#2", "#3", "#4", "#5", "close"]),
        ("cb:21-23", ["#2", "#3", "#4"]),
        ("cb:20,23", ["#0", "#1", "#3"]),
        ("cb:ota", ["#2", "#3", "#4"]),
        ("cb:21-23 and not kind:push", ["#2"]),
        ("cb:21-23 not kind:push", ["#2"]),
        ("ann:spurious-ota-result", ["#3"]),
        ("ann:*", ["#2", "#3", "#5"]),
        ("ann:*-ota-*", ["#3"]),
        ("sev:warning", ["#3", "#5"]),
        ("sev:err", ["#5"]),
        ("conn:c2 or pid:414883", ["#2", "#3", "#4", "close"]),
        ("conn:c1*", ["open", "#0", "#1", "#2", "#5"]),
        ("dir:outlet and (cb:22 or kind:invalid)", ["#4", "#5"]),
        ("!dir:outlet and kind:req", ["#0", "#2"]),
        ("kind:open or kind:close", ["open", "close"]),
        ("kind:resp", ["#1"]),
        ("tr:ws", ["#3"]),
        ("pid:221040", ["#0", "#1"]),
        ("garbage", ["#5"]),
        ("text:progress", ["#4"]),
        ('"OTA result"', ["#3"]),
        ("AVAILABLE and dir:app", ["#0"]),
        ("callback:22", ["#4"]),
        ("not (cb:20 or cb:21) and not kind:open and not kind:close", ["#3", "#4", "#5"]),
    ],
)
def test_expression_selects_rows(expr: str, expected: list[str]) -> None:
    assert shown(expr) == expected


# Bad expressions by what is wrong in them: (text, what the error says, its column).
BAD_TERMS = [
    ("cbb:21", "unknown field 'cbb'", 1),
    ("cb:", "needs a value", 1),
    ("cb:21-", "bad range", 4),
    ("cb:23-21", "runs backwards", 4),
]
BAD_VALUES_OF_NAMED_FIELDS = [
    ("dir:up", "not app or outlet", 5),
    ("kind:re", "is not one of", 6),
    ("tr:udp", "not tcp or ws", 4),
    ("sev:fatal", "not info, warning or error", 5),
]
BAD_STRUCTURE = [
    ("(cb:21", "missing ')'", 7),
    ("cb:21)", "unexpected ')'", 6),
    ("cb:21 and", "a term is missing", 10),
    ("or cb:21", "a term is missing before 'or'", 1),
    ('text:"open', "unclosed quote", 6),
]


@pytest.mark.parametrize(
    ("expr", "fragment", "column"), [*BAD_TERMS, *BAD_VALUES_OF_NAMED_FIELDS, *BAD_STRUCTURE]
)
def test_bad_expression_says_what_and_where(expr: str, fragment: str, column: int) -> None:
    error = error_at(FilterError, Filter.parse, expr, column, fragment)
    assert f"column {column}" in str(error)


def test_empty_filter_is_empty_and_keeps_expression_text() -> None:
    assert Filter.parse("   ").is_empty
    flt = Filter.parse("  cb:21 ")
    assert not flt.is_empty
    assert flt.expression == "cb:21"
