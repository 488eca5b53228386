"""Cut each direction's byte stream into JSON values (frames).

A WebSocket message is one frame. A TCP direction is a byte stream in which recv()
chunks may split values or merge several, so each (connection, side) gets a
streaming splitter with these rules:

- Whitespace (space, tab, CR, LF) between values belongs to no frame; ``raw`` is
  exactly the bytes of one value.
- Any JSON value is a frame (the decoder judges whether it is a message). A word at
  the end of the bytes seen so far (a number, a literal, or garbage: ``NaN`` may be
  the start of ``NaNnull``) might go on, so it waits for the next byte or the close.
- Bytes that cannot start or continue a value make an ``invalid`` frame. The splitter
  resynchronises on the next ``{`` at or after the first bad character (and after the
  frame's first byte): the invalid frame is everything before that ``{``, less
  trailing whitespace. Objects after garbage are therefore never lost; the price is
  that garbage *inside* an object may let one of its nested objects come out as a
  frame of its own, which the decoder then flags. Garbage is held until the ``{``
  that ends it or the close (so its frame never depends on where a chunk stopped);
  a run of it longer than ``max_value_bytes`` is shown in pieces of about that size.
- A value with invalid UTF-8 inside (but otherwise well formed) is one invalid frame
  covering the whole value, so the stream stays in step.
- At most ``max_value_bytes`` (plus one chunk) are buffered for one value; past that
  the bytes so far become an invalid frame and the rest, up to the next ``{``, is
  garbage.
- ``NaN`` and ``Infinity``, which Python's json accepts, are not JSON: invalid frame.
  So is a number too large for a double (``1e999``), and an integer longer than
  Python's ``int()`` converts (``sys.get_int_max_str_digits()``, 4300 digits by
  default; it is process-wide, so it is never changed here): valid JSON, but its
  frame is invalid with the reason, never an exception. Every other integer is exact.
- A frame's ``t`` is that of the event that completed it: for a value, the one with
  its last byte (for a number or literal, the byte after it, or the close); for
  garbage, the one with the ``{`` after it (or the close).

The guarantee: for any bytes, fed whole or cut into chunks anywhere (and whatever
``eager_bytes``), the frames are the same: the same ``raw`` bytes in the same order,
the same validity, values and ``error`` texts. Only ``t`` and ``injected`` follow the
events. This holds as long as no value or run of garbage reaches ``max_value_bytes``:
past it, where it is cut depends on the chunk that crossed the limit.

Speed: a chunk that is exactly one object (maybe followed by a newline), or that
completes the buffered start of one, is parsed with one call to the C scanner. The
first piece of a split object is held without parsing while no ``}`` has arrived
(nothing in it can end before one; an error in it is reported when a ``}`` comes).
Everything else goes through a loop over the buffered text using the same scanner; a
small check of the scanner's error position tells "the data stops in the middle of
a value, wait" from "this is not JSON". Text is decoded with 'surrogateescape', so
invalid UTF-8 survives as lone surrogates that map back to the exact bytes. The
scanning pieces (and JsonBoundary) live in proxy.core.json_scan; this module buffers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from proxy.core.events import SIDES, Close, Data, Event, Open, Side
from proxy.core.json_scan import (
    _DIGITS_ONLY,
    _NINETEEN,
    _TOO_DEEP,
    _WS,
    _WS_BYTES,
    JsonBoundary,
    _after_error,
    _describe,
    _encode,
    _Failure,
    _loads,
    _long_digits,
    _may_go_on,
    _objects,
    _OrjsonError,
    _parse_value,
    _scan,
    _skip_ws,
    _Structure,
    _token,
    _unfinished_scalar,
    _utf8_cut,
    _utf8_error,
    _viable,
)

__all__ = ["Frame", "Framer", "JsonBoundary", "JsonError", "parse_json"]

_CLOSED: Final = "connection closed in the middle of a value"
_ENDED: Final = "the recording ended in the middle of a value"


@dataclass(slots=True)
class Frame:
    """One JSON value cut from a direction's stream, or a run of bytes that is not one.

    ``error`` is None for a valid JSON value (``value`` holds it, of any JSON type);
    otherwise ``value`` is None and ``error`` says what is wrong with ``raw``.
    ``t`` is the time of the data event that completed the frame. ``injected`` is
    set when any event that contributed bytes to it was injected (the relay injects
    only at frame boundaries, so in practice: when its event was).
    """

    t: float
    conn: str
    side: Side
    raw: bytes
    value: Any
    error: str | None = None
    injected: bool = False


class _Stream:
    """Splitter state for one (connection, side) of a TCP connection.

    ``pending`` holds the start of a value not yet complete (its first byte is not
    whitespace), or the first bytes of a character the next chunk finishes.
    ``garbage`` is set while ``pending`` holds garbage (or the rest of a value that
    overflowed): the bytes up to the next ``{`` continue it; it is their invalid
    frame's error. ``carry`` is whether an injected event contributed to ``pending``.
    """

    __slots__ = ("carry", "conn", "garbage", "pending", "side", "structure")

    def __init__(self, conn: str, side: Side) -> None:
        self.conn = conn
        self.side = side
        self.pending: bytes | bytearray = b""
        self.garbage: str | None = None
        self.carry = False
        # Set while a large unfinished value is pending (see Framer.eager_bytes).
        self.structure: _Structure | None = None


class Framer:
    """Turns events into frames, keeping one splitter per (connection, side)."""

    def __init__(
        self, max_value_bytes: int = 1 << 20, *, eager_bytes: int = 1 << 16, reference: bool = False
    ) -> None:
        """``eager_bytes``: up to this size an unfinished value is re-parsed on every
        chunk, so errors in it are seen at once. Past it, parsing waits until the
        value's brackets close or it has doubled since the last try, which keeps a
        huge value linear in time; an error inside it may then be reported a few
        chunks late (the frames are the same, their ``t`` later).

        ``reference``: parse with the standard library's scanner only, never orjson;
        slower, and the yardstick the fast paths are tested against (same frames)."""
        if max_value_bytes < 1:
            raise ValueError("max_value_bytes must be at least 1")
        self.max_value_bytes = max_value_bytes
        self.eager_bytes = eager_bytes
        self._hold_bytes = min(eager_bytes, max_value_bytes)
        self._orjson = not reference
        self._ws: set[str] = set()
        self._streams: dict[tuple[str, Side], _Stream] = {}

    def feed(self, event: Event) -> list[Frame]:
        """Frames completed by ``event``, in stream order."""
        if type(event) is Data:
            if event.conn in self._ws:
                return [_ws_frame(event, self._orjson)]
            key = (event.conn, event.side)
            stream = self._streams.get(key)
            if stream is None:
                stream = self._streams[key] = _Stream(event.conn, event.side)
            data = event.data
            if stream.garbage is not None:
                return self._push(stream, data, event.t, event.injected)
            # Fast path: the buffered bytes (usually none) and the chunk make exactly one
            # object, maybe followed by a newline. Anything else takes the general loop.
            if data[-1:] == b"}" or data[-2:] == b"}\n":
                pending = stream.pending
                if not pending:
                    buf = data
                elif len(pending) + len(data) <= self.eager_bytes:
                    buf = bytes(pending) + data
                else:
                    return self._push(stream, data, event.t, event.injected)
                if buf[:1] == b"{" and self._orjson:
                    # orjson accepts exactly one JSON document (no NaN, valid UTF-8) and
                    # is twice as fast as the stdlib scanner; anything it refuses (a cut,
                    # garbage, 65+ bit integers) takes the general loop, but for a chunk
                    # of several whole objects.
                    if _NINETEEN in buf.translate(_DIGITS_ONLY):
                        return self._push(stream, data, event.t, event.injected)
                    try:
                        value = _loads(buf)
                    except _OrjsonError:
                        return self._several(stream, buf, event)
                    if buf[-1:] == b"\n":
                        buf = buf[:-1]
                    injected = event.injected or stream.carry
                    stream.pending, stream.carry = b"", False
                    return [Frame(event.t, event.conn, event.side, buf, value, None, injected)]
            elif (
                not stream.pending
                and data[:1] == b"{"
                and b"}" not in data
                and len(data) <= self._hold_bytes
            ):
                # The first piece of a split object: it cannot end before a '}' comes.
                stream.pending, stream.carry = data, event.injected
                return []
            return self._push(stream, data, event.t, event.injected)
        if isinstance(event, Open):
            frames = self._flush(
                event.conn, event.t, "connection reopened in the middle of a value"
            )
            if event.transport == "ws":
                self._ws.add(event.conn)
            else:
                self._ws.discard(event.conn)
            return frames
        if isinstance(event, Close):
            self._ws.discard(event.conn)
            return self._flush(event.conn, event.t, _CLOSED)
        raise TypeError(f"not an event: {event!r}")

    def _several(self, stream: _Stream, buf: bytes, event: Data) -> list[Frame]:
        """A chunk that completes several objects (``buf``: what was buffered + it)."""
        objects = _objects(buf)
        if objects is None:
            return self._push(stream, event.data, event.t, event.injected)
        t, conn, side, injected = event.t, event.conn, event.side, event.injected
        carried = len(stream.pending) if stream.carry else 0
        stream.pending, stream.carry = b"", False
        return [
            Frame(t, conn, side, raw, value, None, injected or start < carried)
            for start, raw, value in objects
        ]

    def buffered(self) -> int:
        """Bytes held back waiting for the rest of a value, over all connections
        (bounded by ``max_value_bytes`` plus one chunk per side)."""
        return sum(len(st.pending) for st in self._streams.values())

    def finish(self, t: float) -> list[Frame]:
        """The recording ended with no close: what every stream still holds, as frames
        (invalid, with the reason), so no byte of a capture goes unshown."""
        frames: list[Frame] = []
        for conn in sorted({conn for conn, _ in self._streams}):
            frames += self._flush(conn, t, _ENDED)
        return frames

    def _flush(self, conn: str, t: float, why: str) -> list[Frame]:
        frames: list[Frame] = []
        for side in SIDES:
            stream = self._streams.pop((conn, side), None)
            if stream is not None:
                frames += self._push(stream, b"", t, False, eof=why)
        return frames

    def _push(
        self, st: _Stream, data: bytes, t: float, injected: bool, eof: str | None = None
    ) -> list[Frame]:
        """General case: append ``data`` to what is buffered and cut all it completes.
        With ``eof`` (the reason) the stream ends here and nothing stays buffered."""
        frames: list[Frame] = []
        conn, side = st.conn, st.side

        def invalid(raw: bytes, why: str, inj: bool) -> None:
            raw = raw.strip(_WS_BYTES)
            if raw:
                frames.append(Frame(t, conn, side, raw, None, why, inj))

        if st.garbage is not None:
            # Held garbage goes on up to the next '{' (or the close): where it ends
            # depends on the bytes only, never on where a chunk stopped.
            i = data.find(b"{") if eof is None else len(data)
            if i < 0:
                if type(st.pending) is bytes:
                    st.pending = bytearray(st.pending)  # appended to in place: linear
                st.pending += data
                st.carry = st.carry or injected
                self._overflow(st, frames, t)
                return frames
            invalid(bytes(st.pending) + data[:i], st.garbage, st.carry or injected)
            st.garbage, st.pending, st.carry = None, b"", False
            data = data[i:]
            if not data:
                return frames
        elif (
            eof is None
            and len(st.pending) + len(data) > self.eager_bytes
            and st.pending[:1] in (b"{", b"[", b'"')
        ):
            # A large unfinished value: parse again only when it may have ended.
            if st.structure is None:
                st.structure = _Structure(tried=len(st.pending))
            if type(st.pending) is bytes:
                st.pending = bytearray(st.pending)
            st.pending += data
            st.carry = st.carry or injected
            if st.structure.end(st.pending) is not None:
                st.structure = None  # its brackets closed: parse it now
            elif (
                len(st.pending) < 2 * st.structure.tried and len(st.pending) <= self.max_value_bytes
            ):
                self._overflow(st, frames, t)
                return frames
            data = b""

        st.structure = None  # rebuilt from the start if the value stays unfinished
        carry_len = len(st.pending) if st.carry else 0
        buf = bytes(st.pending) + data if st.pending else data
        ascii_only = buf.isascii()
        held = b""  # the start of a character the next chunk finishes
        if ascii_only:
            text = buf.decode("ascii")
        else:
            cut = len(buf) if eof is not None else _utf8_cut(buf)
            held = buf[cut:]
            text = buf[:cut].decode("utf-8", "surrogateescape")
        n = len(text)
        pos = 0  # index in text
        bpos = 0  # the same position in bytes
        rest_from = n  # where the bytes still buffered start (n: none)
        failure: _Failure | None = None
        while pos < n:
            c = text[pos]
            if c in _WS:
                if c == "\n" and text[pos + 1 : pos + 2] not in _WS:
                    nxt = pos + 1  # the usual separator, a lone newline
                else:
                    nxt = _skip_ws(text, pos)
                bpos += nxt - pos
                pos = nxt
                if pos == n:
                    break
                c = text[pos]
            inj = injected or bpos < carry_len
            if c in '{["':
                if eof is None and c == "{" and text.find("}", pos) < 0:
                    # Without a '}' no object here can end, valid or not, and whatever
                    # follows a broken one starts at a '{' too: wait for one.
                    rest_from = pos
                    break
                try:
                    value, end = _scan(text, pos)
                    why = None
                except Exception as exc:
                    r = _after_error(exc, text, pos)
                    if isinstance(r, _Failure):
                        failure = r
                    else:
                        value = None
                        end, why = r
                if failure is None:
                    raw = buf[pos:end] if ascii_only else _encode(text[pos:end])
                    if why is None and not ascii_only:
                        why = _utf8_error(text, pos, end)
                    frames.append(Frame(t, conn, side, raw, None if why else value, why, inj))
                    bpos += len(raw)
                    pos = end
                    continue
                if failure.msg == _TOO_DEEP:
                    bend = _Structure().end(buf, bpos)
                    if bend is not None:
                        region = buf[bpos:bend]
                        invalid(region, "not JSON: nested too deeply to decode", inj)
                        pos += len(region.decode("utf-8", "surrogateescape"))
                        bpos = bend
                        failure = None
                        continue
                if failure.msg == _TOO_DEEP or _viable(text, failure):
                    if eof is None:
                        rest_from = pos
                    else:
                        invalid(_encode(text[pos:]), eof, inj)
                    break
            else:
                m = _token(text, pos)
                end = m.end() if m else pos
                if end == n and eof is None and _may_go_on(text[pos:end]):
                    rest_from = pos
                    break
                if end == pos:
                    failure = _Failure("Expecting value", pos)
                else:
                    parsed = _parse_value(text, pos)
                    if isinstance(parsed, _Failure):
                        failure = parsed
                    elif parsed[1] != end:
                        failure = _Failure("Extra data", parsed[1])
                    else:
                        raw = buf[pos:end] if ascii_only else _encode(text[pos:end])
                        value, _, why = parsed
                        frames.append(Frame(t, conn, side, raw, None if why else value, why, inj))
                        bpos += len(raw)
                        pos = end
                        continue
                if eof is not None and end == n and _unfinished_scalar(text[pos:end]):
                    invalid(_encode(text[pos:]), eof, inj)
                    break
            # Not JSON from pos: garbage up to the next '{' at or after the failure.
            assert failure is not None
            why = _describe(failure, text, pos)
            i = text.find("{", max(failure.pos, pos + 1))
            if i < 0:
                if eof is not None:
                    invalid(_encode(text[pos:]) + held, why, inj)
                    held = b""
                else:
                    # Held until the '{' that ends it (or the close), so that the frame
                    # is the same however the bytes were chunked.
                    st.garbage = why
                    rest_from = pos
                break
            region = _encode(text[pos:i])
            invalid(region, why, inj)
            bpos += len(region)
            pos = i
            failure = None

        if rest_from == n and not held:
            st.pending, st.carry = b"", False
            return frames
        st.pending = buf[rest_from:] if ascii_only else _encode(text[rest_from:]) + held
        st.carry = injected or bpos < carry_len
        self._overflow(st, frames, t)
        return frames

    def _overflow(self, st: _Stream, frames: list[Frame], t: float) -> None:
        """Bound what is buffered: past the limit it becomes an invalid frame and
        the rest of the stream, up to the next '{', is garbage."""
        limit = self.max_value_bytes
        if len(st.pending) <= limit:
            return
        raw = bytes(st.pending).strip(_WS_BYTES)
        if st.garbage is not None:  # garbage: shown in pieces of the limit, not held
            frames.append(Frame(t, st.conn, st.side, raw, None, st.garbage, st.carry))
            st.pending, st.carry = b"", False
            return
        why = f"value longer than {limit} bytes without ending"
        st.garbage = f"not JSON: rest of a value longer than {limit} bytes"
        frames.append(Frame(t, st.conn, st.side, raw, None, why, st.carry))
        st.pending, st.carry, st.structure = b"", False, None


def _ws_frame(event: Data, fast: bool = True) -> Frame:
    """A WebSocket message is one frame, valid only if it is exactly one JSON value."""
    value, why = _one_value(event.data, fast)
    return Frame(event.t, event.conn, event.side, event.data, value, why, event.injected)


class JsonError(ValueError):
    """Bytes that are not exactly one JSON value this tool decodes; the text says why."""


def parse_json(data: bytes | str) -> Any:
    """The one JSON reader for a whole message from the wire (a WebSocket message):
    exactly the values a frame may hold, so every reader accepts and refuses the same
    things, and refuses with a reason (:class:`JsonError`) instead of raising
    something else: no NaN or Infinity, no number beyond a double, no integer longer
    than Python converts (``sys.get_int_max_str_digits``; never changed, it is
    process-wide), no invalid UTF-8, no nesting beyond the recursion limit. Integers
    stay exact; duplicate keys keep the last value."""
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogatepass")
    value, why = _one_value(data, True)
    if why is not None:
        raise JsonError(why)
    return value


def _one_value(data: bytes, fast: bool) -> tuple[Any, str | None]:
    """(value, None) if ``data`` is exactly one JSON value, else (None, why)."""
    try:
        if fast and not _long_digits(data):
            return _loads(data), None
    except _OrjsonError:
        pass  # say precisely what is wrong with it, below
    try:
        text = data.decode()
    except UnicodeDecodeError as e:
        return None, f"invalid UTF-8: byte 0x{data[e.start]:02X} at byte {e.start}"
    start = _skip_ws(text, 0)
    if start == len(text):
        return None, "empty message"
    parsed = _parse_value(text, start)
    if not isinstance(parsed, _Failure):
        value, end, why = parsed
        end = _skip_ws(text, end)
        if end == len(text):
            return (None if why else value), why
        parsed = _Failure("Extra data", end)
    if _viable(text, parsed):
        return None, "not JSON: the message ends in the middle of a value"
    return None, _describe(parsed, text, 0)
