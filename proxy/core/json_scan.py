"""Where a JSON value ends in text that may stop anywhere, and why it is not JSON.

The pieces the Framer (proxy.core.framing) is built from, apart from its buffering:
the stdlib and orjson scanners with this tool's rules (no NaN, no number beyond a
double, exact integers), telling "the data stops in the middle of a value" from "this
is not JSON", the sentences that say why, and the bracket and quote scanners that find
where a value (:class:`_Structure`) or a stream's top-level value (:class:`JsonBoundary`)
ends without parsing. The Framer imports these names into its own module, so its hot
path looks them up exactly as before.
"""

from __future__ import annotations

import json
import json.scanner
import math
import re
from collections.abc import Callable
from typing import Any, Final, cast

import orjson

_WS_BYTES: Final = b" \t\r\n"
_WS: Final = " \t\r\n"

_ws_run = re.compile(r"[ \t\r\n]*").match


def _skip_ws(text: str, pos: int) -> int:
    """Index of the first non-whitespace character at or after ``pos``."""
    m = _ws_run(text, pos)
    assert m is not None  # the pattern matches the empty string
    return m.end()


# A top-level scalar (number or literal) or a word of garbage: runs to whitespace or
# to a character that can only be structure.
_token = re.compile(r'[^ \t\r\n{}\[\]",:]+').match
_surrogate = re.compile("[\udc80-\udcff]").search
_u_escape = re.compile(r"\\?u[0-9a-fA-F]{0,4}").fullmatch

_LITERAL_PREFIXES: Final = frozenset(
    word[:i]
    for word in ("true", "false", "null", "NaN", "Infinity", "-Infinity")
    for i in range(1, len(word))
)
_NUMBER_TAILS: Final = frozenset({".", "e", "E", "e+", "e-", "E+", "E-"})
# Words that may still grow into a value, or into a longer word (NaN -> NaNnull).
_WORD_PREFIXES: Final = _LITERAL_PREFIXES | {
    "true",
    "false",
    "null",
    "NaN",
    "Infinity",
    "-Infinity",
}
_number_prefix = re.compile(
    r"-?(?:(?:0|[1-9][0-9]*)(?:\.[0-9]+(?:[eE][+-]?[0-9]*)?|\.|[eE][+-]?[0-9]*)?)?"
).fullmatch
# A number cut short: what only more digits can complete.
_unfinished_number = re.compile(
    r"-|-?(?:0|[1-9][0-9]*)(?:\.[0-9]+[eE][+-]?|\.|[eE][+-]?)"
).fullmatch
_TOO_DEEP: Final = "Too deeply nested"

_REASONS: Final = {
    "Expecting value": "expected a value",
    "Expecting ',' delimiter": "expected ',' or a closing bracket",
    "Expecting ':' delimiter": "expected ':' after a key",
    "Expecting property name enclosed in double quotes": "expected a key in double quotes",
    "Invalid control character at": "control characters must be escaped in strings",
    "Invalid \\escape": "invalid escape in a string",
    "Invalid \\uXXXX escape": "invalid \\u escape in a string",
    "Unterminated string starting at": "unterminated string",
    "Extra data": "extra data after the value",
}


class _NonStandardConstant(ValueError):
    """Raised by the strict scanner on NaN / Infinity / -Infinity."""


def _reject_constant(name: str) -> Any:
    raise _NonStandardConstant(f"{name} is not a JSON value")


def _finite_float(text: str) -> float:
    """A JSON number as a float; one too large for a double (1e999) has no JSON form
    once parsed (it would be written back as Infinity), so the frame is invalid."""
    value = float(text)
    if value in (math.inf, -math.inf):
        raise _NonStandardConstant(f"{text} is too large for a number")
    return value


# Python's int() refuses decimal strings longer than sys.get_int_max_str_digits()
# (4300 by default; process-wide, so never changed here): the strict scanner's
# ValueError for such an integer is turned into an invalid frame with this reason.
_int_limit = re.compile(r"Exceeds the limit \((\d+) digits\).*value has (\d+) digits").search


def _skip_int(text: str) -> int:
    """parse_int for the scanner that only finds where a value ends: no conversion."""
    return 0


def _make_scanner(decoder: json.JSONDecoder) -> Callable[[str, int], tuple[Any, int]]:
    return cast(
        Callable[[str, int], tuple[Any, int]], json.scanner.make_scanner(cast(Any, decoder))
    )


_loads: Final = orjson.loads
# A run of 19 digits may be an integer beyond 64 bits (-2**63 - 1 has 19), which
# orjson would turn into a float: such frames take the stdlib path, which keeps every
# integer exact.
_DIGITS_ONLY: Final = bytes(0x39 if 0x30 <= i <= 0x39 else 0x20 for i in range(256))
_NINETEEN: Final = b"9" * 19


def _long_digits(buf: bytes) -> bool:
    """Whether ``buf`` has a run of 19 digits (a translate and a find: ~20x a regex)."""
    return _NINETEEN in buf.translate(_DIGITS_ONLY)


# Outside strings a '}' followed by a '{' can only end one top-level object and start
# the next: where a chunk of several objects is cut first.
_seam = re.compile(rb"\}[ \t\r\n]*\{").search


def _objects(buf: bytes) -> list[tuple[int, bytes, Any]] | None:
    """``buf`` (from a '{' to a final '}' or '}\\n') cut into objects at its seams and
    parsed by orjson: (start, raw, value) each; None if any piece is not one object,
    for the exact loop to decide.

    A piece that parses as one object is exactly the value the scanner would find at
    its start, since an object ends where its bracket closes: a seam inside a string
    only makes a piece that does not parse.
    """
    out: list[tuple[int, bytes, Any]] = []
    pos = 0
    while True:
        m = _seam(buf, pos)
        raw = buf[pos : m.start() + 1] if m is not None else buf[pos:].rstrip(_WS_BYTES)
        try:
            out.append((pos, raw, _loads(raw)))
        except _OrjsonError:
            return None
        if m is None:
            return out
        pos = m.end() - 1


_OrjsonError: Final = orjson.JSONDecodeError
_scan: Final = _make_scanner(
    json.JSONDecoder(parse_constant=_reject_constant, parse_float=_finite_float)
)
_scan_lenient: Final = _make_scanner(json.JSONDecoder(parse_int=_skip_int))


class _Failure:
    """The scanner stopped at ``pos`` for ``msg`` (json's own wording)."""

    __slots__ = ("msg", "pos")

    def __init__(self, msg: str, pos: int) -> None:
        self.msg = msg
        self.pos = pos


def _after_error(exc: Exception, text: str, pos: int) -> _Failure | tuple[int, str]:
    """What the strict scanner raising ``exc`` for the value at ``pos`` means: a
    failure, or (end, why) for a value that is whole but not JSON (NaN, Infinity)."""
    if isinstance(exc, StopIteration):
        return _Failure("Expecting value", exc.value)
    if isinstance(exc, json.JSONDecodeError):
        return _Failure(exc.msg, exc.pos)
    if isinstance(exc, RecursionError):
        return _Failure(_TOO_DEEP, len(text))
    if isinstance(exc, _NonStandardConstant):
        why = f"not JSON: {exc.args[0]}"
    elif type(exc) is ValueError:  # int() refused a long integer
        m = _int_limit(str(exc))
        digits = f"{m.group(2)} digits, more than the {m.group(1)}" if m else "too many digits"
        why = f"not decoded: an integer of {digits} Python converts"
    else:
        raise exc
    try:
        _, end = _scan_lenient(text, pos)
    except Exception as again:
        return _after_error(again, text, pos)
    return end, why


def _parse_value(text: str, pos: int) -> tuple[Any, int, str | None] | _Failure:
    """The value at ``pos``: (value, end, None); (None, end, why) for a whole value that
    is not JSON; or where and why the scanner stopped."""
    try:
        value, end = _scan(text, pos)
    except Exception as exc:
        r = _after_error(exc, text, pos)
        return r if isinstance(r, _Failure) else (None, *r)
    return value, end, None


def _viable(text: str, failure: _Failure) -> bool:
    """Whether the scanner failed only because the text stops: more bytes could make
    the value valid. Exact for valid prefixes; a rare invalid one (``[1.5.``) may be
    taken as viable, which only delays the verdict until the next byte."""
    q, msg = failure.pos, failure.msg
    if msg == _TOO_DEEP:
        return False
    if q >= len(text) or msg.startswith("Unterminated string"):
        return True
    if len(text) - q > 10:
        return False
    rest = text[q:]
    if msg == "Expecting value":
        return rest in _LITERAL_PREFIXES
    if msg == "Expecting ',' delimiter":
        return rest in _NUMBER_TAILS and text[q - 1] in "0123456789"
    if msg == "Invalid \\uXXXX escape":
        return _u_escape(rest) is not None
    return False


def _may_go_on(token: str) -> bool:
    """Whether the word ``token``, at the end of the bytes so far, may be cut short: a
    number or a literal (maybe unfinished), or NaN/Infinity, which more letters would
    make one longer word of garbage. Any other word is garbage from a fixed byte on,
    whatever follows."""
    return token in _WORD_PREFIXES or _number_prefix(token) is not None


def _unfinished_scalar(token: str) -> bool:
    return token in _LITERAL_PREFIXES or _unfinished_number(token) is not None


def _encode(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def _describe(failure: _Failure, text: str, start: int) -> str:
    """A sentence about why the bytes from ``start`` are not JSON; byte offsets are
    relative to ``start`` (the frame's first byte)."""
    if failure.msg == _TOO_DEEP:
        return "not JSON: nested too deeply to decode"
    q = max(failure.pos, start)
    at = len(_encode(text[start:q]))
    reason = _REASONS.get(failure.msg, failure.msg[:1].lower() + failure.msg[1:])
    if q >= len(text):
        return f"not JSON: data ends at byte {at} ({reason})"
    ch = text[q]
    if "\udc80" <= ch <= "\udcff":
        return f"invalid UTF-8: byte 0x{ord(ch) - 0xDC00:02X} at byte {at}"
    return f"not JSON: unexpected {ch!r} at byte {at} ({reason})"


def _utf8_cut(buf: bytes) -> int:
    """Where a UTF-8 sequence that the bytes so far leave unfinished starts (else the
    length): decoding it now would make it look invalid."""
    n = len(buf)
    for back in range(1, min(3, n) + 1):
        b = buf[n - back]
        if b < 0x80:
            return n
        if b >= 0xC0:
            if b < 0xC2 or b > 0xF4:
                return n  # never starts a valid sequence
            need = 2 if b < 0xE0 else 3 if b < 0xF0 else 4
            return n - back if back < need else n
    return n


def _utf8_error(text: str, start: int, end: int) -> str | None:
    m = _surrogate(text, start, end)
    if m is None:
        return None
    at = len(_encode(text[start : m.start()]))
    return f"invalid UTF-8: byte 0x{ord(m.group()) - 0xDC00:02X} at byte {at}"


# A string (its closing quote captured, absent if the bytes stop first) or a bracket.
_structure_tokens = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*(")?|[\[\]{}]', re.DOTALL).finditer
# The rest of a string already opened.
_string_rest = re.compile(rb'[^"\\]*(?:\\.[^"\\]*)*(")?', re.DOTALL).match


class _Structure:
    """Where a value's brackets and quotes stand, scanned incrementally over bytes.

    It does not validate; it only finds the byte where a value that starts with
    ``{``, ``[`` or ``"`` would end. Used to avoid re-parsing a large unfinished value
    on every chunk, and to delimit a value too deeply nested for the C scanner.
    """

    __slots__ = ("depth", "in_string", "scanned", "tried")

    def __init__(self, tried: int = 0) -> None:
        self.depth = 0
        self.in_string = False
        self.scanned = 0  # bytes of the value looked at so far
        self.tried = tried  # the value's length at the last full parse attempt

    def end(self, buf: bytes | bytearray, start: int = 0) -> int | None:
        """Offset just past the value that starts at ``buf[start]``, if it is there."""
        i = start + self.scanned
        if self.in_string:
            m = _string_rest(buf, i)
            assert m is not None  # the pattern matches the empty string
            if m.group(1) is None:  # still open; a trailing backslash is left unscanned
                self.scanned = m.end() - start
                return None
            self.in_string = False
            i = m.end()
            if self.depth == 0:
                return i
        depth = self.depth
        for m in _structure_tokens(buf, i):
            c = buf[m.start()]
            if c == 0x22:  # a string
                if m.group(1) is None:
                    self.depth, self.in_string = depth, True
                    self.scanned = m.end() - start
                    return None
                if depth == 0:
                    return m.end()
            elif c == 0x7B or c == 0x5B:
                depth += 1
            else:
                depth -= 1
                if depth <= 0:
                    return m.end()
        self.depth = depth
        self.scanned = len(buf) - start
        return None


_escape_pair = re.compile(rb"\\.", re.DOTALL).sub
_plain_string = re.compile(rb'"[^"]*"').sub


class JsonBoundary:
    """Whether a byte stream sits between top-level JSON values, chunk after chunk.

    The relay asks it before injecting a message ("is it safe to insert a whole value
    here?"), so it runs on every forwarded chunk: regex and count() passes only, no
    parse. Depth clamps at 0 so stray closers in garbage cannot wedge it; a top-level
    scalar split across chunks is not tracked (the protocol sends objects). It shares
    the string scanning of :class:`_Structure`, which finds where one value ends.
    """

    __slots__ = ("depth", "escape", "in_string")

    def __init__(self) -> None:
        self.depth = 0
        self.in_string = False
        self.escape = False

    @property
    def at_boundary(self) -> bool:
        return self.depth == 0 and not self.in_string

    def feed(self, data: bytes) -> None:
        pos = 0
        if self.in_string:
            start = 1 if self.escape else 0
            self.escape = False
            m = _string_rest(data, start)
            assert m is not None  # the pattern matches the empty string
            if m.group(1) is None:  # still inside the string; maybe a lone "\\" at the end
                self.escape = m.end() == len(data) - 1
                return
            self.in_string = False
            pos = m.end()
        rest = _escape_pair(b"", data[pos:]) if b"\\" in data else data[pos:]
        if rest.count(b'"') % 2:  # ends inside a string: keep only what precedes it
            self.in_string = True
            self.escape = rest.endswith(b"\\")
            rest = rest[: rest.rfind(b'"')]
        if b'"' in rest:
            rest = _plain_string(b"", rest)
        opened = rest.count(b"{") + rest.count(b"[")
        closed = rest.count(b"}") + rest.count(b"]")
        self.depth = max(0, self.depth + opened - closed)
