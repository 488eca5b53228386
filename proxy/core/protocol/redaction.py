"""Secrets in messages: the one rule for the `secret` annotation, masking and redaction.

Credentials travel in config objects (cb1 replies, cb2 requests; any callback that
carries ``sys_prefs.mqtt``). The annotation, the detail pane's masking and
``proxy.store.redact`` all ask ``secret_kind``, so they cannot disagree.
"""

from __future__ import annotations

import json
import re
from typing import Any, Final, Literal

from proxy.core.protocol.common import _json

REDACTED: Final = "<redacted>"
# Greedy to the last '@': a password may hold one (``mqtt://bob:pw@x@broker``), and
# cutting at the first would leave the rest of it in place.
_URL_CREDENTIALS: Final = re.compile(r"^((?:[A-Za-z][A-Za-z0-9+.\-]*://)?)(.+)@", re.DOTALL)
_URL_SCHEME: Final = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")
# Keys whose value is a credential wherever they appear, and those that are one in an
# MQTT object (the account name). Compared in lower case.
SECRET_KEYS: Final = frozenset({"pass", "password", "passwd", "psk"})
MQTT_ACCOUNT_KEYS: Final = frozenset({"user", "username"})
URL_KEYS: Final = frozenset({"mqtt_broker_url"})

SecretKind = Literal["value", "url"]


def secret_kind(key: str, value: Any, in_mqtt: bool) -> SecretKind | None:
    """Whether ``key: value`` holds a credential: "value" (the whole value, of any
    JSON type), "url" (the user:password part of a URL), or None.

    One rule for the annotation, the detail pane's masking and redaction, so they
    cannot disagree. Empty values and ones already redacted are not secrets.
    """
    if value is None or value == "" or value == REDACTED:
        return None
    low = key.lower()
    if low in SECRET_KEYS or (in_mqtt and low in MQTT_ACCOUNT_KEYS):
        return "value"
    if type(value) is str and "@" in value and (low in URL_KEYS or _URL_SCHEME.match(value)):
        m = _URL_CREDENTIALS.match(value)
        if m is not None and m.group(2) != REDACTED:
            return "url"
    return None


def _config_objects(args: Any) -> list[tuple[str, dict[str, Any]]]:
    """The config objects in cb1/cb2 args: an object, or objects inside a list."""
    if type(args) is dict:
        return [("", args)]
    if type(args) is list:
        return [(f"[{i}].", a) for i, a in enumerate(args) if type(a) is dict]
    return []


def _mqtt_secrets(args: Any) -> list[tuple[dict[str, Any], str, str, str]]:
    """Every credential in config args: (mqtt dict, key, path, kind).

    ``kind`` is "value" for user/pass and "url" for credentials in the broker URL.
    """
    found: list[tuple[dict[str, Any], str, str, str]] = []
    for prefix, obj in _config_objects(args):
        sys_prefs = obj.get("sys_prefs")
        if type(sys_prefs) is not dict:
            continue
        mqtt = sys_prefs.get("mqtt")
        if type(mqtt) is not dict:
            continue
        for key, value in mqtt.items():
            kind = secret_kind(key, value, True)
            if kind is not None:
                found.append((mqtt, key, f"{prefix}sys_prefs.mqtt.{key}", kind))
    return found


def redact_url(url: str) -> str:
    """``url`` with everything before its last '@' (after the scheme) replaced."""
    return _URL_CREDENTIALS.sub(lambda m: f"{m.group(1)}{REDACTED}@", url, count=1)


def redact_value(obj: Any) -> tuple[Any, list[str]]:
    """A copy of a decoded message with MQTT credentials replaced by ``REDACTED``.

    Looks wherever a config object can carry them (cb1 replies, cb2 requests, and
    any other callback that happens to carry ``sys_prefs.mqtt``), and says what it
    removed ("cb2 sys_prefs.mqtt.pass"). The input is never modified.
    """
    if type(obj) is not dict:
        return obj, []
    payload = obj.get("payload")
    if type(payload) is not dict:
        return obj, []
    args = payload.get("callbackArgs")
    if not _mqtt_secrets(args):
        return obj, []
    args_copy = json.loads(json.dumps(args))  # a deep copy of a JSON value
    cbn = payload.get("callbackName")
    where = f"cb{cbn}" if type(cbn) is int else f"callback {_json(cbn, 20)}"
    removed: list[str] = []
    for mqtt, key, path, kind in _mqtt_secrets(args_copy):
        if kind == "url":
            mqtt[key] = redact_url(mqtt[key])
            removed.append(f"{where} {path} (credentials in the URL)")
        else:
            mqtt[key] = REDACTED
            removed.append(f"{where} {path}")
    out = dict(obj)
    out["payload"] = {**payload, "callbackArgs": args_copy}
    return out, removed


def redact_bytes(raw: bytes) -> tuple[bytes, list[str]]:
    """``redact_value`` on a frame's bytes, re-serialised compactly.

    Returns ``raw`` itself when it is not JSON or holds nothing to redact, so that
    untouched frames stay byte-identical. Whitespace around the value is kept (a TCP
    frame's trailing newline survives).
    """
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return raw, []
    redacted, removed = redact_value(value)
    if not removed:
        return raw, []
    body = raw.strip()
    start = raw.find(body[:1]) if body else 0
    lead, trail = raw[:start], raw[start + len(body) :]
    text = json.dumps(redacted, ensure_ascii=False, separators=(",", ":"))
    return lead + text.encode("utf-8") + trail, removed
