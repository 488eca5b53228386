"""The timeline's filter language, kept free of Textual so it can be tested on its own.

A filter is a boolean expression over terms::

    cb:21-23 and not kind:push
    cb:22 arg.1:40-100                        # the second callbackArgs element, 40 to 100
    ann:spurious-ota-result
    conn:c2 or pid:414883
    (dir:outlet and cb:ota) or timeout        # a bare word searches the text

``and`` binds tighter than ``or``; two terms side by side mean ``and``; ``not``/``!``
negates; parentheses group. ``field:value`` terms are listed in :data:`FIELDS`; ``arg.N:VALUE`` and
``arg.N:LOW-HIGH`` look at element N (0-based) of ``callbackArgs``. A value
may be quoted ("...") to hold spaces or parentheses. Bad expressions raise
:class:`FilterError` with a sentence a user can act on and the column it refers to.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Final, TypeGuard

from proxy.core.model import Message, Row

# What a compiled filter looks at: the timeline row, its message (None for connection
# open/close rows) and a lazily computed one-line text of the row (for text search).
TextOf = Callable[[Row, Message | None], str]
Predicate = Callable[[Row, Message | None, TextOf], bool]

FIELDS: Final[dict[str, str]] = {
    "cb": "callback number, range or list (21, 21-23, 9,11) or part of its name (cb:ota)",
    "dir": "who sent it: app or outlet",
    "conn": "connection id (c2); * and ? wildcards allowed",
    "kind": "request, response, push, invalid, open or close",
    "ann": "annotation code (spurious-ota-result); * and ? wildcards; ann:* = any",
    "sev": "annotation severity at least info, warning or error",
    "pid": "packetID, exactly",
    "tr": "transport: tcp or ws",
    "text": "text anywhere in the row (also what a bare word does)",
    "arg.N": "callbackArgs element N (0-based): arg.1:40 (a number or a word), arg.1:40-100",
}
ALIASES: Final[dict[str, str]] = {
    "callback": "cb",
    "direction": "dir",
    "from": "dir",
    "connection": "conn",
    "annotation": "ann",
    "severity": "sev",
    "packetid": "pid",
    "transport": "tr",
}
KINDS: Final = ("request", "response", "push", "invalid", "open", "close")
SEVERITIES: Final = ("info", "warning", "error")
KEYWORDS: Final = ("and", "or", "not")


class FilterError(ValueError):
    """An expression that cannot be understood; ``column`` is 1-based (0 = whole text).

    ``hint`` says what may be written instead; it follows the column, so that the
    column reads as the place of the mistake, not of the last word of a list.
    """

    def __init__(self, message: str, column: int = 0, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.column = column
        self.hint = hint

    def __str__(self) -> str:
        text = f"{self.message} (at column {self.column})" if self.column else self.message
        return f"{text}; {self.hint}" if self.hint else text


class FieldValueError(FilterError):
    """A known field with a value it cannot take; the message says what it can."""


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # "(", ")", "not", "and", "or", "word"
    text: str
    pos: int  # 0-based offset into the expression
    quoted: bool = False


_TOKEN = re.compile(
    r'\s*(?:(?P<paren>[()])|(?P<bang>!)|(?P<word>(?:"[^"]*"|[^\s()"!])+)|(?P<bad>"))'
)


def _tokenize(expr: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    while pos < len(expr):
        m = _TOKEN.match(expr, pos)
        if m is None or m.end() == pos:
            break
        if m.group("bad") is not None:
            raise FilterError("unclosed quote", m.start("bad") + 1)
        if (p := m.group("paren")) is not None:
            tokens.append(_Token(p, p, m.start("paren")))
        elif m.group("bang") is not None:
            tokens.append(_Token("not", "!", m.start("bang")))
        else:
            raw = m.group("word")
            start = m.start("word")
            low = raw.lower()
            if low in KEYWORDS:
                tokens.append(_Token(low, raw, start))
            else:
                tokens.append(_Token("word", raw.replace('"', ""), start, quoted='"' in raw))
        pos = m.end()
    return tokens


class _Parser:
    def __init__(self, expr: str) -> None:
        self.expr = expr
        self.tokens = _tokenize(expr)
        self.i = 0

    def peek(self) -> _Token | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self) -> _Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def end_column(self) -> int:
        return len(self.expr.rstrip()) + 1

    def parse(self) -> Predicate:
        if not self.tokens:
            return _always
        pred = self.parse_or()
        tok = self.peek()
        if tok is not None:
            raise FilterError(f"unexpected {tok.text!r}", tok.pos + 1)
        return pred

    def parse_or(self) -> Predicate:
        terms = [self.parse_and()]
        while (tok := self.peek()) is not None and tok.kind == "or":
            self.take()
            terms.append(self.parse_and())
        return _joined(terms, any)

    def parse_and(self) -> Predicate:
        terms = [self.parse_not()]
        while (tok := self.peek()) is not None and tok.kind in ("and", "not", "(", "word"):
            if tok.kind == "and":
                self.take()
            terms.append(self.parse_not())
        return _joined(terms, all)

    def parse_not(self) -> Predicate:
        tok = self.peek()
        if tok is not None and tok.kind == "not":
            self.take()
            inner = self.parse_not()
            return lambda row, msg, text: not inner(row, msg, text)
        return self.parse_atom()

    def parse_atom(self) -> Predicate:
        tok = self.peek()
        if tok is None:
            raise FilterError("expression ends too early: a term is missing", self.end_column())
        if tok.kind == "(":
            self.take()
            inner = self.parse_or()
            close = self.peek()
            if close is None or close.kind != ")":
                col = close.pos + 1 if close else self.end_column()
                opened = f"the '(' it would close is at column {tok.pos + 1}"
                raise FilterError("missing ')'", col, opened)
            self.take()
            return inner
        if tok.kind == "word":
            self.take()
            return _term(tok)
        raise FilterError(f"a term is missing before {tok.text!r}", tok.pos + 1)


def _joined(terms: list[Predicate], join: Callable[[Iterable[bool]], bool]) -> Predicate:
    """``terms`` joined by ``any`` (or) or ``all`` (and); one term stands for itself."""
    if len(terms) == 1:
        return terms[0]
    return lambda row, msg, text: join(t(row, msg, text) for t in terms)


def _always(row: Row, msg: Message | None, text: TextOf) -> bool:
    return True


def _term(tok: _Token) -> Predicate:
    word = tok.text
    if tok.quoted or ":" not in word:
        return _text_term(word)
    name, _, value = word.partition(":")
    field = ALIASES.get(name.lower(), name.lower())
    column = tok.pos + 1
    if field == "arg" or field.startswith("arg."):
        return _arg_term(field, value, column)
    if field not in FIELDS:
        known = ", ".join(FIELDS)
        raise FilterError(f"unknown field {name!r}", column, f"known fields: {known}")
    if value == "":
        raise FieldValueError(f"{field}: needs a value ({FIELDS[field]})", column)
    builder = _BUILDERS[field]
    return builder(value, column + len(name) + 1)


def _text_term(value: str) -> Predicate:
    needle = value.lower()
    return lambda row, msg, text: needle in text(row, msg).lower()


def _cb_term(value: str, column: int) -> Predicate:
    numbers: set[int] = set()
    if re.fullmatch(r"[\d,\-\s]+", value):
        for part in value.split(","):
            if not part:
                raise FieldValueError(f"cb: empty item in {value!r}", column)
            if "-" in part:
                lo_s, _, hi_s = part.partition("-")
                if not lo_s.isdigit() or not hi_s.isdigit():
                    raise FieldValueError(f"cb: bad range {part!r}; write it as 21-23", column)
                lo, hi = int(lo_s), int(hi_s)
                if lo > hi:
                    raise FieldValueError(f"cb: range {part!r} runs backwards", column)
                numbers.update(range(lo, hi + 1))
            else:
                numbers.add(int(part))
        frozen = frozenset(numbers)
        return lambda row, msg, text: msg is not None and msg.callback in frozen
    needle = value.lower()
    return lambda row, msg, text: msg is not None and needle in msg.name.lower()


def _dir_term(value: str, column: int) -> Predicate:
    sides = {"app": "app", "a": "app", "outlet": "outlet", "o": "outlet", "device": "outlet"}
    side = sides.get(value.lower())
    if side is None:
        raise FieldValueError(f"dir: {value!r} is not app or outlet", column)
    return lambda row, msg, text: msg is not None and msg.side == side


def _glob(value: str) -> Callable[[str], bool]:
    if any(c in value for c in "*?["):
        pattern = re.compile(fnmatch.translate(value.lower()))
        return lambda s: pattern.match(s.lower()) is not None
    low = value.lower()
    return lambda s: s.lower() == low


def _conn_term(value: str, column: int) -> Predicate:
    match = _glob(value)
    return lambda row, msg, text: match(row.conn)


def _kind_term(value: str, column: int) -> Predicate:
    low = value.lower()
    candidates = [k for k in KINDS if k.startswith(low)]
    if len(candidates) != 1:
        raise FieldValueError(f"kind: {value!r} is not one of {', '.join(KINDS)}", column)
    kind = candidates[0]
    if kind in ("open", "close"):
        return lambda row, msg, text: row.kind == kind
    return lambda row, msg, text: msg is not None and msg.kind == kind


def _ann_term(value: str, column: int) -> Predicate:
    if value == "*":
        return lambda row, msg, text: msg is not None and bool(msg.annotations)
    match = _glob(value)
    return lambda row, msg, text: msg is not None and any(match(a.code) for a in msg.annotations)


def _sev_term(value: str, column: int) -> Predicate:
    low = value.lower()
    candidates = [s for s in SEVERITIES if s.startswith(low)]
    if len(candidates) != 1:
        raise FieldValueError(f"sev: {value!r} is not info, warning or error", column)
    floor = SEVERITIES.index(candidates[0])
    return lambda row, msg, text: (
        msg is not None and any(SEVERITIES.index(a.severity) >= floor for a in msg.annotations)
    )


def _pid_term(value: str, column: int) -> Predicate:
    return lambda row, msg, text: (
        msg is not None and msg.packet_id is not None and str(msg.packet_id) == value
    )


def _tr_term(value: str, column: int) -> Predicate:
    low = value.lower()
    if low not in ("tcp", "ws"):
        raise FieldValueError(f"tr: {value!r} is not tcp or ws", column)
    return lambda row, msg, text: msg is not None and msg.transport == low


# A JSON-style number: what arg.N compares numerically (and a range's bounds).
_NUMBER: Final = r"-?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
_number = re.compile(_NUMBER).fullmatch
_range = re.compile(f"({_NUMBER})-({_NUMBER})").fullmatch
_LITERALS: Final[dict[str, object]] = {"true": True, "false": False, "null": None}


def _is_number(value: object) -> TypeGuard[int | float]:
    """A JSON number: ``bool`` is an ``int`` subclass in Python, but JSON true is not 1."""
    return type(value) is int or type(value) is float


def _arg_test(index: int, value: str, column: int) -> Callable[[object], bool]:
    """How one ``callbackArgs`` element is compared with the term's VALUE."""
    if (m := _range(value)) is not None:
        low, high = float(m.group(1)), float(m.group(2))
        if low > high:
            raise FieldValueError(f"arg.{index}: range {value!r} runs backwards", column)
        return lambda x: _is_number(x) and low <= x <= high
    if _number(value) is not None:
        number = float(value)
        return lambda x: _is_number(x) and x == number
    if re.fullmatch(r"[\d.eE+\-]+", value) and any(c.isdigit() for c in value):
        raise FieldValueError(
            f"arg.{index}: {value!r} is neither a number nor a range LOW-HIGH (40-100, -5--1)",
            column,
        )
    low_text = value.lower()
    if low_text in _LITERALS:
        literal = _LITERALS[low_text]
        return lambda x: x is literal or (type(x) is str and x.lower() == low_text)
    return lambda x: type(x) is str and x.lower() == low_text


def _arg_term(field: str, value: str, column: int) -> Predicate:
    """``arg.N:VALUE`` / ``arg.N:LOW-HIGH``: element N of ``callbackArgs``.

    A message whose arguments are not a list, or are too short, does not match: a
    rule must never act on a message it cannot read.
    """
    if field == "arg":
        raise FieldValueError(
            "arg needs an index: arg.N:VALUE, N counting from 0 (arg.1:40)", column
        )
    index_text = field[4:]
    if not (index_text.isascii() and index_text.isdigit()):
        raise FieldValueError(
            f"arg.N: N must be a whole number counting from 0 (arg.1:40), not {index_text!r}",
            column + 4,
        )
    index = int(index_text)
    if value == "":
        raise FieldValueError(f"arg.{index}: needs a value ({FIELDS['arg.N']})", column)
    test = _arg_test(index, value, column + len(field) + 1)

    def predicate(row: Row, msg: Message | None, text: TextOf) -> bool:
        if msg is None:
            return False
        args = msg.args
        return type(args) is list and len(args) > index and test(args[index])

    return predicate


def _text_field(value: str, column: int) -> Predicate:
    return _text_term(value)


_BUILDERS: Final[dict[str, Callable[[str, int], Predicate]]] = {
    "cb": _cb_term,
    "dir": _dir_term,
    "conn": _conn_term,
    "kind": _kind_term,
    "ann": _ann_term,
    "sev": _sev_term,
    "pid": _pid_term,
    "tr": _tr_term,
    "text": _text_field,
}


@dataclass(frozen=True, slots=True)
class Filter:
    """A compiled expression; ``Filter.parse("")`` matches everything."""

    expression: str
    predicate: Predicate

    @classmethod
    def parse(cls, expression: str) -> Filter:
        try:
            return cls(expression.strip(), _Parser(expression).parse())
        except RecursionError:
            raise FilterError("too deeply nested: use fewer parentheses or nots", 1) from None

    @property
    def is_empty(self) -> bool:
        return self.expression == ""

    def __call__(self, row: Row, msg: Message | None, text: TextOf) -> bool:
        return self.predicate(row, msg, text)


def help_text() -> str:
    """The syntax, for the help screen and error messages."""
    lines = [f"  {name + ':':6} {meaning}" for name, meaning in FIELDS.items()]
    return "\n".join(
        [
            "Terms: field:value or a bare word (text search). Combine with and, or, not/!,",
            "parentheses; terms side by side mean 'and'. Quote values with spaces.",
            *lines,
        ]
    )
