"""Remove secrets (and, to share a capture publicly, identifiers) from wire events.

A secret can be written in many ways (JSON escapes, a number, an object, the first of
two duplicate keys), so searching the bytes for one spelling of it misses the others.
Redaction therefore works frame by frame, on the frame's exact byte span in its
stream (the framer gives a frame's bytes, not its offset; the span is found here by
walking the stream alongside it):

- a valid frame that holds a secret is decoded with every key kept (duplicates too,
  in order, numbers as written) and rewritten as a whole, compactly, with the secret
  replaced;
- a run of adjacent invalid frames (garbage that chunk boundaries cut into several)
  that names a secret key, or holds a URL with credentials, is scrubbed from there to
  its end: ``"pass":<redacted>}``, which stays invalid.

The new bytes that equal the old ones' start keep their chunks; the rest goes into the
frame's last chunk, so it completes in the same event as before (chunk boundaries
inside a rewritten frame move; a chunk left empty is dropped). Every other byte stays
as it was. The report names each redaction by message id (the id ``analyze`` gives
the original) and field. With ``pseudonymise`` (``export --redact=all``) serial
numbers, MAC and IP addresses and SSIDs are also replaced, each original by the same
pseudonym everywhere (``SN-1``, ``02:00:00:00:00:01``, ``198.18.0.1``, ``SSID-1``), so
the analysis of the copy still correlates devices and connections as the original's.
"""

from __future__ import annotations

import bisect
import contextlib
import ipaddress
import json
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any, Final

from proxy.core import protocol
from proxy.core.errors import UserError
from proxy.core.events import Close, Data, Event, Open, is_utf8
from proxy.core.framing import Frame, Framer
from proxy.core.model import Message

REDACTED: Final = protocol.REDACTED
# Unquoted, so an invalid frame stays invalid; a scrubbed frame ends in "}" so that
# the framer, which holds an object's start until a "}" comes, still cuts it when its
# last chunk arrives (not at the next frame's "}").
_SCRUBBED: Final = "<redacted>"
# The scrubbed rest of an invalid frame: a quoted placeholder, then a NaN that keeps
# the frame invalid, and the brackets still open. The framer ends a value with a NaN
# at its closing bracket, so the scrubbed frame ends where the original did.
_SCRUBBED_VALUE: Final = f'"{_SCRUBBED}","{_SCRUBBED}":NaN'
_WS: Final = b" \t\r\n"


class RedactionError(UserError):
    """A frame that holds a secret could not be rewritten: nothing is written."""


@dataclass(slots=True)
class Removal:
    """One secret taken out: which message, which field, and how."""

    message: int
    field: str
    where: str

    def __str__(self) -> str:
        return f"message {self.message} ({self.where}): {self.field}"


@dataclass(slots=True)
class Redaction:
    """What was removed, for the user's report (never the secrets themselves)."""

    removals: list[Removal] = field(default_factory=list)
    frames: int = 0  # frames rewritten or scrubbed
    pseudonyms: dict[str, int] = field(default_factory=dict)  # kind -> originals replaced
    pseudo: Pseudonyms | None = field(default=None, repr=False)

    @property
    def removed(self) -> list[str]:
        return [str(r) for r in self.removals]


# ---------------------------------------------------------------------------
# A JSON value with every key kept


class _Num(str):
    """A JSON number exactly as written (no int() limit, no float rounding)."""


class _Obj(list[tuple[str, Any]]):
    """A JSON object as its (key, value) pairs: order and duplicate keys kept."""


def _reject(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _loads(text: str) -> Any:
    return json.loads(
        text, object_pairs_hook=_Obj, parse_int=_Num, parse_float=_Num, parse_constant=_reject
    )


_quote: Final = json.encoder.encode_basestring  # the C one: ensure_ascii=False


def _dump_str(s: str) -> str:
    if s.isascii():
        return _quote(s)
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(s)  # a lone surrogate has only its escaped form
    return json.dumps(s, ensure_ascii=False)


def _dump(v: Any, out: list[str]) -> None:
    t = type(v)
    if t is _Obj:
        out.append("{")
        for i, (k, x) in enumerate(v):
            if i:
                out.append(",")
            out.append(_dump_str(k))
            out.append(":")
            _dump(x, out)
        out.append("}")
    elif t is list:
        out.append("[")
        for i, x in enumerate(v):
            if i:
                out.append(",")
            _dump(x, out)
        out.append("]")
    elif t is str:
        out.append(_dump_str(v))
    elif t is _Num:
        out.append(str.__str__(v))
    else:
        out.append(json.dumps(v))


def _plain_get(obj: Any, key: str) -> Any:
    """The last value of ``key`` (as the decoder sees it), or None."""
    if type(obj) is not _Obj:
        return None
    found = None
    for k, v in obj:
        if k == key:
            found = v
    return found


def _where(tree: Any) -> str:
    cb = _plain_get(_plain_get(tree, "payload"), "callbackName")
    return f"cb{cb}" if type(cb) is _Num and cb.isdigit() else "message"


def _label(path: str) -> str:
    """A field path as the protocol names it: relative to callbackArgs when inside."""
    for prefix in ("payload.callbackArgs.", "payload.callbackArgs"):
        if path.startswith(prefix) and len(path) > len(prefix):
            return path[len(prefix) :]
    return path


# ---------------------------------------------------------------------------
# Pseudonyms

_MAC: Final = re.compile(
    r"(?<![0-9A-Fa-f:-])[0-9A-Fa-f]{2}([:-])(?:[0-9A-Fa-f]{2}\1){4}[0-9A-Fa-f]{2}(?![0-9A-Fa-f:-])"
)
_IPV4: Final = re.compile(r"(?<![0-9.])(?:[0-9]{1,3}\.){3}[0-9]{1,3}(?![0-9]|\.[0-9])")
_IPV6: Final = re.compile(
    r"(?<![0-9A-Za-z:.])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![0-9A-Za-z:.])"
)
_SERIAL_KEYS: Final = frozenset({"sn", "sub_sn", "serial", "serial_number", "serialnumber"})
_MAC_KEYS: Final = frozenset({"mac", "bssid", "mac_address", "macaddress"})
_FIRST_PSEUDO_V4: Final = int(ipaddress.IPv4Address("198.18.0.0"))  # RFC 2544: not a host's
_FIRST_PSEUDO_V6: Final = int(ipaddress.IPv6Address("2001:db8::"))  # RFC 3849


def _serial_key(low: str) -> bool:
    return low in _SERIAL_KEYS or low.endswith("_sn")


def _ssid_key(low: str) -> bool:
    return "ssid" in low and low != "bssid"


def _version_key(low: str) -> bool:
    """Firmware versions look like addresses ("1.0.0.12") but identify nothing
    (and "server" is not one: it may well hold an address)."""
    return low.endswith(("_rev", "_ver", "version")) or low.startswith("fw") or low == "rev"


class Pseudonyms:
    """Consistent stand-ins: the same original always gets the same pseudonym.

    Loopback and unspecified addresses identify nothing and stay as they are.
    """

    def __init__(self) -> None:
        self.serials: dict[str, str] = {}
        self.macs: dict[str, str] = {}
        self.ips: dict[str, str] = {}
        self.ssids: dict[str, str] = {}
        self._used: set[str] = set()
        self._next_v4 = 0
        self._next_v6 = 0
        self._serial_re: re.Pattern[str] | None = None

    def counts(self) -> dict[str, int]:
        return {
            "serial numbers": len(self.serials),
            "MAC addresses": len(self.macs),
            "IP addresses": len({k for k, v in self.ips.items() if k != v}),
            "SSIDs": len(self.ssids),
        }

    def serial(self, s: str) -> str:
        got = self.serials.get(s)
        if got is None:
            got = self.serials[s] = f"SN-{len(self.serials) + 1}"
            self._serial_re = None
        return got

    def ssid(self, s: str) -> str:
        got = self.ssids.get(s)
        if got is None:
            got = self.ssids[s] = f"SSID-{len(self.ssids) + 1}"
        return got

    def mac(self, s: str) -> str:
        key = s.lower().replace("-", ":")
        got = self.macs.get(key)
        if got is None:
            n = len(self.macs) + 1
            # locally administered (02:...), so never a real vendor's address
            got = self.macs[key] = "02:00:" + ":".join(
                f"{(n >> shift) & 0xFF:02x}" for shift in (24, 16, 8, 0)
            )
        m = _MAC.fullmatch(s)
        if m is not None:
            got = got.replace(":", m.group(1))
            if s.upper() == s:
                got = got.upper()
        return got

    def ip(self, s: str) -> str:
        got = self.ips.get(s)
        if got is not None:
            return got
        try:
            addr = ipaddress.ip_address(s)
        except ValueError:
            return s
        if addr.is_loopback or addr.is_unspecified:
            got = s
        else:
            while True:
                if addr.version == 4:
                    self._next_v4 += 1
                    n = self._next_v4 + (self._next_v4 - 1) // 254 * 2  # skip .0 and .255
                    got = str(ipaddress.IPv4Address(_FIRST_PSEUDO_V4 + n))
                else:
                    self._next_v6 += 1
                    got = str(ipaddress.IPv6Address(_FIRST_PSEUDO_V6 + self._next_v6))
                if got not in self._used and got not in self.ips:
                    break
        self.ips[s] = got
        self._used.add(got)
        return got

    def text(self, s: str) -> str:
        """``s`` with every MAC, IP address and known serial in it replaced."""
        if ":" in s or "-" in s:
            s = _MAC.sub(lambda m: self.mac(m.group(0)), s)
        if "." in s:
            s = _IPV4.sub(lambda m: self.ip(m.group(0)), s)
        if s.count(":") >= 2:
            s = _IPV6.sub(lambda m: self.ip(m.group(0)), s)
        if self.serials:
            if self._serial_re is None:
                # inside other text only serials long enough not to match by chance
                alts = sorted((a for a in self.serials if len(a) >= 6), key=len, reverse=True)
                alts = alts or ["(?!)"]
                self._serial_re = re.compile("|".join(re.escape(a) for a in alts))
            s = self._serial_re.sub(lambda m: self.serials[m.group(0)], s)
        return s

    def address(self, addr: str) -> str:
        """An "ip:port" (or "[v6]:port") address of an open event."""
        return self.text(addr)

    def scalar(self, key: str | None, v: Any) -> Any:
        low = key.lower() if key is not None else ""
        if type(v) is str:
            if not v:
                return v
            if _serial_key(low):
                return self.serial(v)
            if _ssid_key(low):
                return self.ssid(v)
            if low in _MAC_KEYS or low.endswith("_mac"):
                return self.mac(v)
            if _version_key(low):
                return v
            return self.text(v)
        if type(v) is _Num and _serial_key(low):
            return _Num(self.serial(str.__str__(v)).removeprefix("SN-"))
        return v

    def register(self, tree: Any, key: str | None = None) -> None:
        """Note the serials in a decoded frame (a first pass, so that a serial seen
        anywhere is replaced everywhere, even before the frame that names it)."""
        t = type(tree)
        if t is _Obj:
            for k, x in tree:
                self.register(x, k)
        elif t is list:
            for x in tree:
                self.register(x, key)
        elif t is str and key is not None and tree and _serial_key(key.lower()):
            self.serial(tree)


# ---------------------------------------------------------------------------
# One frame


class _Walk:
    """Rebuild a decoded frame with secrets (and identifiers) replaced."""

    def __init__(self, pseudo: Pseudonyms | None) -> None:
        self.pseudo = pseudo
        self.fields: list[str] = []
        self.changed = False

    def value(self, v: Any, path: str, key: str | None, in_mqtt: bool) -> Any:
        t = type(v)
        if t is _Obj:
            keys = [k for k, _ in v]
            counts = Counter(keys) if len(set(keys)) != len(keys) else None
            # an object with a password is an account, whatever its key (a piece of an
            # object that garbage split off is a frame of its own): its user goes too
            in_mqtt = in_mqtt or any(k.lower() in protocol.SECRET_KEYS for k in keys)
            seen: Counter[str] = Counter()
            out = _Obj()
            for k, x in v:
                sub = f"{path}.{k}" if path else k
                label = _label(sub)
                if counts is not None and counts[k] > 1:
                    seen[k] += 1
                    label += f" (duplicate {seen[k]} of {counts[k]})"
                kind = protocol.secret_kind(k, x, in_mqtt)
                if kind == "value":
                    out.append((k, REDACTED))
                    self.fields.append(label)
                    self.changed = True
                elif kind == "url":
                    out.append((k, protocol.redact_url(x)))
                    self.fields.append(f"{label} (credentials in the URL)")
                    self.changed = True
                else:
                    out.append((k, self.value(x, sub, k, k.lower() == "mqtt")))
            return out
        if t is list:
            return [self.value(x, f"{path}[{i}]", key, False) for i, x in enumerate(v)]
        if self.pseudo is not None and (t is str or t is _Num):
            new = self.pseudo.scalar(key, v)
            if new != v or type(new) is not t:
                self.changed = True
            return new
        return v


def _key_names(text: str) -> Iterable[tuple[int, str]]:
    """(position, decoded name) of every ``"name":`` in possibly broken JSON text,
    tried at every quote (so a stray quote before it cannot hide it)."""
    for m in _KEY_AT.finditer(text):
        inner = m.group(2)
        try:
            name = json.loads(f'"{inner}"')
        except ValueError:
            name = _ESCAPE.sub(_unescape, inner)
        yield m.start(), name


_KEY_AT: Final = re.compile(r'(?=("((?:[^"\\]|\\.)*)"[ \t\r\n]*:))', re.DOTALL)
_ESCAPE: Final = re.compile(r"\\(u[0-9a-fA-F]{4}|.)", re.DOTALL)
_CRED_URL: Final = re.compile(
    r"[A-Za-z][A-Za-z0-9+.\-]*:(?:\\?/|\\u002[fF]){2}[^\"\s]*?(?:@|\\u0040)", re.DOTALL
)
_SCRUB_KEYS: Final = protocol.SECRET_KEYS | protocol.MQTT_ACCOUNT_KEYS | protocol.URL_KEYS
_SN_VALUE: Final = re.compile(r'("((?:[^"\\]|\\.)*)"[ \t\r\n]*:[ \t\r\n]*")((?:[^"\\]|\\.)*)(")')


def _unescape(m: re.Match[str]) -> str:
    e = m.group(1)
    if e[0] == "u" and len(e) == 5:
        return chr(int(e[1:], 16))
    return {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}.get(e, e)


def _closers(head: str) -> str:
    """The brackets that close what ``head`` left open (at least one ``}``), so the
    scrubbed frame ends where the framer ended the original: the framer holds an
    unfinished value until its brackets close."""
    stack: list[str] = []
    in_string = escape = False
    for c in head:
        if in_string:
            if escape:
                escape = False
            elif c == "\\":
                escape = True
            elif c == '"':
                in_string = False
        elif c == '"':
            in_string = True
        elif c in "{[":
            stack.append("}" if c == "{" else "]")
        elif c in "}]" and stack:
            stack.pop()
    return "".join(reversed(stack)) or "}"


def _scrub(text: str, pseudo: Pseudonyms | None) -> tuple[str, list[str], int]:
    """An invalid frame's text cut at its first secret key (or credentials URL),
    every secret key that went with the cut, and where it is (else the length)."""
    keys = [(pos, name) for pos, name in _key_names(text) if name.lower() in _SCRUB_KEYS]
    cut = keys[0][0] if keys else len(text)
    fields: list[str] = []
    m = _CRED_URL.search(text, 0, cut)
    if m is not None:
        quote = text.rfind('"', 0, m.start())
        cut = quote if quote >= 0 else m.start()
        text = text[:cut] + _SCRUBBED_VALUE + _closers(text[:cut])
        fields.append("a URL with credentials (invalid frame: scrubbed from there to its end)")
    elif keys:
        head = text[:cut] + _dump_str(keys[0][1]) + ":"
        text = head + _SCRUBBED_VALUE + _closers(head)
    for n, (_, name) in enumerate(keys):
        if n == 0 and m is None:
            fields.append(f"{name} (invalid frame: scrubbed from this key to its end)")
        else:
            fields.append(f"{name} (invalid frame: went with the scrubbed rest of it)")
    if pseudo is not None:
        text = _SN_VALUE.sub(lambda m: _pseudo_pair(m, pseudo), text)
        text = pseudo.text(text)
    return text, fields, cut


def _pseudo_pair(m: re.Match[str], pseudo: Pseudonyms) -> str:
    low = m.group(2).lower()
    value = m.group(3)
    if not value:
        return m.group(0)
    if _serial_key(low):
        value = pseudo.serial(value)
    elif _ssid_key(low):
        value = pseudo.ssid(value)
    else:
        return m.group(0)
    return m.group(1) + json.dumps(value)[1:-1] + m.group(4)


# Without an escape a secret key is spelled out (in some case), and URL credentials
# need an '@': bytes with none of these hold no secret.
_HINT: Final = re.compile(rb"pass|psk|user|@|\\", re.IGNORECASE).search


def _may_hold_secret(raw: bytes) -> bool:
    return _HINT(raw) is not None


def redact_frame(
    raw: bytes, valid: bool, pseudo: Pseudonyms | None = None
) -> tuple[bytes, list[str], str]:
    """A frame's bytes with its secrets (and with ``pseudo`` its identifiers) replaced.

    Returns (bytes, fields removed, where) with ``raw`` itself when nothing changed.
    ``where`` names the callback for the report.
    """
    if pseudo is None and not _may_hold_secret(raw):
        return raw, [], ""
    if valid:
        try:
            text = raw.decode("utf-8")
            body = text.strip(" \t\r\n")
            tree = _loads(body)
            walk = _Walk(pseudo)
            new = walk.value(tree, "", None, False)
            where = _where(tree)
            if not walk.changed:
                return raw, [], where
            out: list[str] = []
            _dump(new, out)
        except (ValueError, RecursionError):
            pass  # decoded by the framer but not here (nested too deep): scrub it
        else:
            start = text.index(body[:1]) if body else 0
            lead, trail = text[:start], text[start + len(body) :]
            return (lead + "".join(out) + trail).encode("utf-8"), walk.fields, where
    text = raw.decode("utf-8", "surrogateescape")
    scrubbed, fields, _ = _scrub(text, pseudo)
    if scrubbed == text:
        return raw, [], "invalid frame"
    return scrubbed.encode("utf-8", "surrogateescape"), fields, "invalid frame"


# ---------------------------------------------------------------------------
# A capture


@dataclass(slots=True)
class _Stream:
    """One TCP direction: its bytes so far, its chunks, and where framing is in it."""

    buf: bytearray = field(default_factory=bytearray)
    chunks: list[tuple[int, int]] = field(default_factory=list)  # (event index, start)
    cursor: int = 0
    edits: list[tuple[int, int, bytes]] = field(default_factory=list)
    # adjacent invalid frames not yet judged: (message id, frame, start)
    region: list[tuple[int, Frame, int]] = field(default_factory=list)


def _locate(st: _Stream, raw: bytes) -> int | None:
    """Where ``raw`` (the next frame of this stream) starts in it."""
    buf, pos = st.buf, st.cursor
    n = len(buf)
    while pos < n and buf[pos] in _WS:
        pos += 1
    if not buf.startswith(raw, pos):
        found = buf.find(raw, st.cursor)
        if found < 0:
            return None
        pos = found
    st.cursor = pos + len(raw)
    return pos


def redact_events(
    events: Iterable[Event], *, pseudonymise: bool = False
) -> tuple[list[Event], Redaction]:
    """A copy of ``events`` with every secret removed (see the module docstring).

    Raises RedactionError when a frame that holds a secret cannot be rewritten.
    """
    events = list(events)
    pseudo = Pseudonyms() if pseudonymise else None
    if pseudo is not None:
        _register_serials(events, pseudo)
    report = Redaction(pseudo=pseudo)
    out: list[Event | None] = list(events)
    framer = Framer()
    streams: dict[tuple[str, str], _Stream] = {}
    done: list[_Stream] = []
    ws: set[str] = set()
    msg_id = 0

    def record(mid: int, frame: Frame, fields: list[str], where: str) -> str:
        place = f"{where} from the {frame.side}, {frame.conn}, t={frame.t:.3f}"
        report.removals += [Removal(mid, f, place) for f in fields]
        report.frames += 1
        return place

    def lost(mid: int, place: str) -> RedactionError:
        return RedactionError(
            f"could not find the bytes of message {mid} ({place}) in its stream, "
            "so its secrets could not be removed; nothing was written"
        )

    def judge_region(st: _Stream) -> None:
        """Scrub a run of adjacent invalid frames as one: garbage that a chunk
        boundary cut in two must not hide a key from its value."""
        region, st.region = st.region, []
        if not region:
            return
        first, last = region[0], region[-1]
        begin, end = first[2], last[2] + len(last[1].raw)
        old = bytes(st.buf[begin:end])
        if pseudo is None and not _may_hold_secret(old):
            return
        text = old.decode("utf-8", "surrogateescape")
        scrubbed, fields, cut = _scrub(text, pseudo)
        if scrubbed == text:
            return
        new = scrubbed.encode("utf-8", "surrogateescape")
        # the report names the message where the scrub began
        cut_at = begin + len(text[:cut].encode("utf-8", "surrogateescape"))
        at = next((r for r in region if r[2] + len(r[1].raw) > cut_at), last)
        record(at[0], at[1], fields, "invalid frame")
        st.edits.append((begin, end, new))

    def handle(frames: list[Frame], event_index: int) -> None:
        nonlocal msg_id
        for frame in frames:
            mid, msg_id = msg_id, msg_id + 1
            conn, side = frame.conn, frame.side
            if conn in ws:
                new, fields, where = redact_frame(frame.raw, frame.error is None, pseudo)
                if new is not frame.raw:
                    record(mid, frame, fields, where)
                    ev = events[event_index]
                    assert isinstance(ev, Data)
                    out[event_index] = replace(ev, data=new)
                continue
            st = streams.get((conn, side))
            start = None if st is None else _locate(st, frame.raw)
            if st is not None and start is not None and frame.error is not None:
                if st.region and st.buf[st.region[-1][2] + len(st.region[-1][1].raw) : start].strip(
                    _WS
                ):
                    judge_region(st)  # not adjacent: only whitespace may lie between
                st.region.append((mid, frame, start))
                continue
            if st is not None:
                judge_region(st)
            new, fields, where = redact_frame(frame.raw, frame.error is None, pseudo)
            if new is frame.raw:
                continue
            place = record(mid, frame, fields, where)
            if st is None or start is None:
                raise lost(mid, place)
            st.edits.append((start, start + len(frame.raw), new))

    for i, event in enumerate(events):
        conn = event.conn
        if type(event) is Data:
            if conn not in ws:
                st = streams.get((conn, event.side))
                if st is None:
                    st = streams[conn, event.side] = _Stream()
                st.chunks.append((i, len(st.buf)))
                st.buf += event.data
            handle(framer.feed(event), i)
            continue
        # An open or a close ends the connection's streams (the framer flushes them).
        handle(framer.feed(event), i)
        for side in ("app", "outlet"):
            old = streams.pop((conn, side), None)
            if old is not None:
                done.append(old)
        if isinstance(event, Open):
            if event.transport == "ws":
                ws.add(conn)
            else:
                ws.discard(conn)
            if pseudo is not None:
                out[i] = replace(
                    event, app=pseudo.address(event.app), outlet=pseudo.address(event.outlet)
                )
        elif isinstance(event, Close):
            ws.discard(conn)
            if pseudo is not None and event.error:
                out[i] = replace(event, error=pseudo.text(event.error))
    for st in [*done, *streams.values()]:
        judge_region(st)
        if st.edits:
            _apply(st, events, out)
    _redact_originals(out, pseudo)
    if pseudo is not None:
        report.pseudonyms = pseudo.counts()
    return [e for e in out if e is not None], report


def _redact_originals(out: list[Event | None], pseudo: Pseudonyms | None) -> None:
    """Scrub what was received of a message the proxy changed (``original``, one frame
    and its whitespace): it holds the same secrets as what was forwarded."""
    for i, ev in enumerate(out):
        if type(ev) is Data and ev.original is not None:
            new, _, _ = redact_frame(ev.original, True, pseudo)
            if new is not ev.original:
                out[i] = replace(ev, original=new)


def _register_serials(events: list[Event], pseudo: Pseudonyms) -> None:
    framer = Framer()
    for event in events:
        for frame in framer.feed(event):
            if frame.error is None and b"sn" in frame.raw.lower():
                with contextlib.suppress(ValueError, RecursionError):
                    pseudo.register(_loads(frame.raw.decode("utf-8")))


def _common_prefix(a: bytes, b: bytes) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def _apply(st: _Stream, events: list[Event], out: list[Event | None]) -> None:
    """Lay the edited frames over the stream's chunks.

    The bytes a frame's new form shares with its start keep their chunks; the rest
    goes into the frame's last chunk (at least one byte), so the frame still completes
    in the same event, and a scrubbed frame is cut where it was. A chunk left with no
    bytes is dropped.
    """
    buf = st.buf
    starts = [start for _, start in st.chunks]
    ends = [*starts[1:], len(buf)]
    # per chunk touched: (start, end, new bytes) of the stretches of it that change
    spans: dict[int, list[tuple[int, int, bytes]]] = {}
    for start, end, new in sorted(st.edits):
        keep = min(_common_prefix(bytes(buf[start:end]), new), len(new) - 1)
        first = bisect.bisect_right(starts, start) - 1
        last = first
        while ends[last] < end:
            last += 1
        for c in range(first, last + 1):
            a, b = max(starts[c], start), min(ends[c], end)
            lo = min(a - start, keep)
            hi = len(new) if c == last else max(lo, min(b - start, keep))
            spans.setdefault(c, []).append((a, b, new[lo:hi]))
    for c, changes in spans.items():
        index = st.chunks[c][0]
        ev = events[index]
        assert isinstance(ev, Data)
        parts: list[bytes | bytearray] = []
        pos = starts[c]
        for a, b, piece in changes:
            parts += (buf[pos:a], piece)
            pos = b
        parts.append(buf[pos : ends[c]])
        data = b"".join(parts)
        if data == ev.data:
            continue
        out[index] = replace(ev, data=data, text=is_utf8(data)) if data else None


def redact_meta(meta: dict[str, Any], report: Redaction) -> dict[str, Any]:
    """The header metadata to write with a redacted copy: what was done (never the
    secrets or the originals), and with pseudonyms its addresses replaced."""
    pseudo = report.pseudo

    def clean(v: Any) -> Any:
        if pseudo is None:
            return v
        if type(v) is str:
            return pseudo.text(v)
        if type(v) is list:
            return [clean(x) for x in v]
        if type(v) is dict:
            return {k: clean(x) for k, x in v.items()}
        return v

    out = {k: clean(v) for k, v in meta.items()}
    out["redacted"] = report.removed
    if pseudo is not None:
        out["pseudonymised"] = report.pseudonyms
    return out


def redact_message(msg: Message) -> tuple[Message, list[str]]:
    """The message as a shareable copy shows it (the TUI's copy and export), and the
    fields removed; ``msg`` itself when it holds no secret.

    Its annotations are those of the redacted frame (the decoder quotes arguments in
    some) plus those the analysis added, which name no argument values.
    """
    valid = msg.kind != "invalid"
    new_raw, fields, _ = redact_frame(msg.raw, valid, None)
    if new_raw is msg.raw:
        return msg, []
    if not valid:
        copy = protocol.decode(
            Frame(msg.t, msg.conn, msg.side, new_raw, None, "secrets scrubbed", msg.injected),
            msg.id,
            msg.transport,
        )
        copy.annotations = list(msg.annotations)
        return copy, fields
    old = protocol.decode(_frame_of(msg, msg.raw), msg.id, msg.transport)
    copy = protocol.decode(_frame_of(msg, new_raw), msg.id, msg.transport)
    frame_level = old.annotations
    later = [a for a in msg.annotations if a not in frame_level]
    copy.kind, copy.callback, copy.name = msg.kind, msg.callback, msg.name
    copy.annotations = copy.annotations + later
    return copy, fields


def _frame_of(msg: Message, raw: bytes) -> Frame:
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):
        return Frame(msg.t, msg.conn, msg.side, raw, None, "not JSON", msg.injected)
    return Frame(msg.t, msg.conn, msg.side, raw, value, None, msg.injected)
