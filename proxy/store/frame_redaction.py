"""Redaction of one frame: finding its secrets (and identifiers) and rewriting it.

A valid frame is decoded with every key kept and written back with the secret
replaced; an invalid one is scrubbed from its first secret key (see proxy.store.redact,
which applies this to a capture's streams, for the rules). :class:`Pseudonyms` are the
consistent stand-ins of ``export --redact=all``.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections import Counter
from collections.abc import Iterable
from typing import Any, Final

from proxy.core import protocol

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
