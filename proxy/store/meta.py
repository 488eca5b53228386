"""Header metadata of captures and traces: tagged so both formats keep its types.

Apart from the event record (proxy.store.records) because it is a concern of its own:
the recursive tagging of arbitrary metadata (see META_TAGS), used once per file, never
per event.
"""

from __future__ import annotations

import base64
import binascii
import math
import struct
from collections.abc import Iterable, Mapping
from typing import Any, Final, Literal

from proxy.store.records import Problem, SourceError, SourceKind, _utf8

MetaFormat = Literal["json", "msgpack"]

META_TAGS: Final = ("$bytes", "$float", "$int", "$str", "$tuple", "$map", "$dict")
"""Header metadata keeps its types through both formats (a round trip changes nothing).

A value the format cannot hold as itself is written as a one-key map naming its type:
``{"$bytes": BASE64}`` and ``{"$float": "nan"|"inf"|"-inf"|"nan:0x<64-bit pattern>"}``
(a NaN other than the usual one keeps its exact bits) in a trace (JSON has no
bytes and no NaN), ``{"$int": DIGITS}`` and ``{"$str": UTF-8 BYTES WITH SURROGATES}`` in
a capture (msgpack holds 64-bit integers and valid UTF-8 only), ``{"$tuple": [...]}`` in
both. Entries whose keys are not strings go in a list of pairs under ``"$map"`` beside
the others (``{"created": 1.0, "$map": [[{"$bytes": "cmF3"}, 1]]}``). A real map with a
``"$map"`` key, or with one key that is a tag, is written as ``{"$dict": MAP}``. Readers
turn them back; a tool that does not know them sees plain JSON or msgpack.
"""


META_DEPTH: Final = 200
"""How deeply metadata may nest: msgpack packs 511 levels at most, and both formats are
encoded and decoded by recursion. No writer of ours nests more than a few levels."""


class MetaError(ValueError):
    """Metadata that neither format can hold (nested more than META_DEPTH levels)."""


def encode_meta(meta: Mapping[Any, Any], fmt: MetaFormat) -> dict[str, Any]:
    """``meta`` as ``fmt`` stores it, tagged where needed (see META_TAGS).

    Raises MetaError for metadata nested more than META_DEPTH levels, nothing else.
    """
    _check_depth(meta)
    encoded = _encode(meta, fmt)
    assert isinstance(encoded, dict)
    return encoded


def decode_meta(obj: Mapping[Any, Any]) -> dict[Any, Any]:
    """The metadata a header (without its format key) holds: META_TAGS turned back.

    Raises MetaError for metadata nested more than META_DEPTH levels.
    """
    _check_depth(obj)
    decoded = _decode(dict(obj))
    return decoded if isinstance(decoded, dict) else dict(obj)  # a hand-made {"$tuple": ...}


def header_meta(
    header: Mapping[Any, Any],
    key: str,
    latest: int,
    kind: SourceKind,
    name: str,
    where: str,
    problems: list[Problem] | None,
) -> dict[Any, Any]:
    """The metadata of a capture's or trace's header (format key ``key``), or SourceError.

    A version this code cannot read stops the opening; metadata no format can hold
    (MetaError) is left out and reported at ``where`` in ``problems``: the events are
    what matters.
    """
    version = header[key]
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise SourceError(f"{name}: the {kind} header has a bad version {version!r}")
    if version > latest:
        raise SourceError(
            f"{name}: {kind} format version {version} is newer than this invisproxy "
            f"understands ({latest}); upgrade invisproxy"
        )
    try:
        return decode_meta({k: v for k, v in header.items() if k != key})
    except MetaError as exc:
        if problems is not None:
            problems.append(Problem(where, f"{exc}; left out, the events are read"))
        return {}


def _check_depth(meta: object) -> None:
    """MetaError if ``meta`` nests more than META_DEPTH levels (found without recursion)."""
    stack: list[tuple[object, int]] = [(meta, 0)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, Mapping):
            children: Iterable[object] = [*value.keys(), *value.values()]
        elif isinstance(value, list | tuple):
            children = value
        else:
            continue
        if depth >= META_DEPTH:
            raise MetaError(f"metadata nests more than {META_DEPTH} levels deep")
        stack.extend((child, depth + 1) for child in children)


_QUIET_NAN: Final = struct.pack(">d", math.nan)


def _nonfinite_text(value: float) -> str:
    """``inf``, ``-inf``, ``nan``, or ``nan:0x...`` for a NaN with other bits."""
    bits = struct.pack(">d", value)
    if math.isnan(value) and bits != _QUIET_NAN:
        return f"nan:0x{bits.hex()}"
    return repr(value)


def _nonfinite(text: str) -> float | None:
    if text in ("nan", "inf", "-inf"):
        return float(text)
    if text.startswith("nan:0x") and len(text) == 22:
        try:
            value: float = struct.unpack(">d", bytes.fromhex(text[6:]))[0]
        except ValueError:
            return None
        return value if math.isnan(value) else None
    return None


def _encode(value: object, fmt: MetaFormat) -> Any:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        if fmt == "msgpack" and not -(2**63) <= value < 2**64:
            return {"$int": str(int(value))}
        return int(value)
    if isinstance(value, float):
        if fmt == "json" and not math.isfinite(value):
            return {"$float": _nonfinite_text(float(value))}
        return float(value)
    if isinstance(value, str):
        if fmt == "msgpack" and not _utf8(value):
            return {"$str": value.encode("utf-8", "surrogatepass")}
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        if fmt == "json":
            return {"$bytes": base64.b64encode(value).decode("ascii")}
        return bytes(value)
    if isinstance(value, tuple):
        return {"$tuple": [_encode(v, fmt) for v in value]}
    if isinstance(value, list):
        return [_encode(v, fmt) for v in value]
    if isinstance(value, Mapping):
        plain: dict[str, Any] = {}
        odd: list[list[Any]] = []
        for k, v in value.items():
            if isinstance(k, str) and (fmt == "json" or _utf8(k)):
                plain[str(k)] = _encode(v, fmt)
            else:
                odd.append([_encode(k, fmt), _encode(v, fmt)])
        if odd:
            # the pairs come after the string keys when read: if that is not their order
            # (or a real "$map" key is in the way) every entry becomes a pair
            if "$map" in plain or not _odd_last(value, fmt):
                return {"$map": [[_encode(k, fmt), _encode(v, fmt)] for k, v in value.items()]}
            plain["$map"] = odd
            return plain
        if "$map" in plain or (len(plain) == 1 and next(iter(plain)) in META_TAGS):
            return {"$dict": plain}
        return plain
    return repr(value)  # not data (an object someone put in): its repr, rather than fail


def _odd_last(value: Mapping[Any, Any], fmt: MetaFormat) -> bool:
    seen_odd = False
    for k in value:
        odd = not (isinstance(k, str) and (fmt == "json" or _utf8(k)))
        if seen_odd and not odd:
            return False
        seen_odd = seen_odd or odd
    return True


def _decode(value: Any) -> Any:
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        ((tag, inner),) = value.items()
        if tag in META_TAGS:
            try:
                return _untag(tag, inner)
            except (ValueError, TypeError, binascii.Error):
                pass  # not one of ours after all (a hand-edited header): keep it as it is
    elif isinstance(value.get("$map"), list):
        try:  # string keys as they are, plus the pairs whose keys are not strings
            pairs = [(_decode(k), _decode(v)) for k, v in value["$map"]]
            out = {k: _decode(v) for k, v in value.items() if k != "$map"}
            out.update(pairs)
            return out
        except (ValueError, TypeError):
            pass
    return {k: _decode(v) for k, v in value.items()}


def _untag(tag: str, inner: Any) -> Any:
    if tag == "$dict" and isinstance(inner, dict):
        return {k: _decode(v) for k, v in inner.items()}
    if tag == "$tuple" and isinstance(inner, list):
        return tuple(_decode(v) for v in inner)
    if tag == "$map" and isinstance(inner, list):
        pairs = [(_decode(k), _decode(v)) for k, v in inner]
        return dict(pairs)  # TypeError for an unhashable key: kept as it is
    if tag == "$bytes" and isinstance(inner, str):
        return base64.b64decode(inner, validate=True)
    if tag == "$float" and isinstance(inner, str) and (number := _nonfinite(inner)) is not None:
        return number
    if tag == "$int" and isinstance(inner, str) and inner.lstrip("-").isdigit():
        return int(inner)
    if tag == "$str" and isinstance(inner, bytes | str):
        raw = inner if isinstance(inner, bytes) else base64.b64decode(inner, validate=True)
        return raw.decode("utf-8", "surrogatepass")
    raise ValueError(tag)
