"""Decoding: one frame into a Message with the annotations the frame alone justifies.

This is the hot path (a million messages must analyse in seconds), so it reads the
envelope, runs the spec's cheap type and range checks, and keeps only the arguments the
analysis reads (``CallbackSpec.eager_args``); the rest stay ``LAZY`` until shown.
Nothing here rejects a message: odd shapes are annotated and shown raw.
"""

from __future__ import annotations

from typing import Any

from proxy.core.events import Transport
from proxy.core.framing import Frame
from proxy.core.model import LAZY, Annotation, Message
from proxy.core.protocol.catalog import CATALOG, name_of, puback_meaning
from proxy.core.protocol.common import _int_like, _json
from proxy.core.protocol.duplicates import _duplicate_annotation, _may_repeat_keys
from proxy.core.protocol.redaction import _mqtt_secrets
from proxy.core.protocol.spec import CallbackSpec


def _invalid(frame: Frame, msg_id: int, transport: Transport, text: str) -> Message:
    return Message(
        msg_id,
        frame.t,
        frame.conn,
        transport,
        frame.side,
        "invalid",
        None,
        "invalid",
        None,
        None,
        None,
        None,
        frame.raw,
        [Annotation("invalid-json", "error", text)],
        frame.injected,
    )


def decode(frame: Frame, msg_id: int, transport: Transport) -> Message:
    """Decode one frame into a Message, with the annotations the frame alone justifies.

    ``kind`` is provisional (app: request, outlet: push); the analysis settles
    responses and fills a pure ack's callback from the request it answers.
    """
    if frame.error is not None:
        why = frame.error
        return _invalid(
            frame,
            msg_id,
            transport,
            why if why.startswith(("not JSON", "not decoded")) else f"not JSON: {why}",
        )
    value = frame.value
    if type(value) is not dict:
        return _invalid(frame, msg_id, transport, f"not a JSON object: {_json(value, 80)}")
    side = frame.side
    pid = value.get("packetID")
    puback = value.get("PUBACK")
    payload = value.get("payload")
    if type(payload) is dict:
        raw_cb = payload.get("callbackName")
        args = payload.get("callbackArgs")
    else:
        raw_cb = args = None
    app = side == "app"
    spec: CallbackSpec | None
    if type(raw_cb) is int:
        callback: int | None = raw_cb
        spec = CATALOG.get(raw_cb)
        name = spec.name if spec is not None else name_of(raw_cb)
    else:
        callback, spec, name = None, None, ""
    msg = Message(
        msg_id,
        frame.t,
        frame.conn,
        transport,
        side,
        "request" if app else "push",
        callback,
        name,
        pid,
        value.get("sn"),
        puback,
        args if (spec.eager_args if spec is not None else callback is None) else LAZY,
        frame.raw,
        [],
        frame.injected,
    )
    if callback is None:
        if raw_cb is not None or payload is not None or app:
            _decode_odd_callback(msg, payload, raw_cb)
            callback = msg.callback
            spec = CATALOG.get(callback) if callback is not None else None
    elif spec is None:
        msg.annotations.append(
            Annotation("unknown-callback", "warning", f"no source documents callback {callback}")
        )
    if app:
        if type(pid) is not int or not 100000 <= pid <= 999999:
            _packet_id_request(msg, pid)
    else:
        if pid is not None and type(pid) is not int:
            msg.annotations.append(
                Annotation(
                    "packetid-format",
                    "warning",
                    f"packetID should be an integer, got {type(pid).__name__} {_json(pid, 30)}",
                )
            )
        if puback is not None and (puback != 1 or type(puback) is not int):
            _puback_annotation(msg, callback, puback)
    if spec is not None:
        spec.check(msg, side, args)
        if app:
            if spec.push_only:
                msg.annotations.append(
                    Annotation(
                        "unexpected-direction",
                        "warning",
                        f"cb{spec.number} ({spec.label}) is pushed by the outlet, never sent "
                        "by an app",
                    )
                )
            elif spec.fire_and_forget_text:
                msg.annotations.append(
                    Annotation("fire-and-forget", "info", spec.fire_and_forget_text)
                )
        elif spec.never_answered:
            msg.annotations.append(
                Annotation(
                    "unexpected-direction",
                    "warning",
                    f"the outlet sent cb{spec.number} ({spec.label}), which it never answers",
                )
            )
        if spec.carries_secrets:
            _secret_annotation(msg, args)
    if _may_repeat_keys(frame.raw, value):
        _duplicate_annotation(msg, frame.raw)
    return msg


def _decode_odd_callback(msg: Message, payload: Any, raw_cb: Any) -> None:
    """The slow path: no payload, no callbackName, or one that is not an int."""
    app = msg.side == "app"
    if payload is None:
        if app:
            msg.annotate("missing-callback", "warning", "request without payload.callbackName")
        return  # from the outlet: a pure acknowledgement {sn, packetID, PUBACK}
    if type(payload) is not dict:
        msg.annotate(
            "missing-callback", "warning", f"payload is not an object: {_json(payload, 60)}"
        )
        return
    if raw_cb is None:
        msg.annotate("missing-callback", "warning", "payload without callbackName")
        return
    number = _int_like(raw_cb)
    if number is None:
        msg.annotate(
            "missing-callback",
            "warning",
            f"callbackName is not a number: {_json(raw_cb, 40)}",
        )
        return
    msg.callback = number
    msg.name = name_of(number)
    msg.annotate(
        "callback-format",
        "warning",
        f"callbackName {_json(raw_cb, 40)} is a {type(raw_cb).__name__}, not an integer; "
        f"read as {number}",
    )
    if number not in CATALOG:
        msg.annotate("unknown-callback", "warning", f"no source documents callback {number}")


def adopt_request(reply: Message, request: Message) -> None:
    """Settle a reply once the analysis knows which request it answers.

    A pure ack carries no callbackName, so it takes the request's; and its
    ``puback-failure`` text, written before the callback was known, gets the
    callback's own meaning (cb27's depends on the request's sub-command).
    """
    if reply.callback is None:
        reply.callback = request.callback
        reply.name = request.name
    for i, note in enumerate(reply.annotations):
        if note.code == "puback-failure":
            text = _puback_failure_text(reply.callback, request.args)
            reply.annotations[i] = Annotation(note.code, note.severity, text)


def _puback_failure_text(callback: int | None, request_args: Any = None) -> str:
    text = f"PUBACK 0: {puback_meaning(callback, 0, request_args)}"
    spec = CATALOG.get(callback) if callback is not None else None
    if spec is not None:
        text += spec.refusal_note
    return text


def _packet_id_request(msg: Message, pid: Any) -> None:
    if pid is None:
        text = "request without packetID"
    elif type(pid) is not int:
        text = f"packetID should be an integer, got {type(pid).__name__} {_json(pid, 30)}"
    else:
        text = f"packetID {pid} is not six digits without a leading zero (100000-999999)"
    msg.annotations.append(Annotation("packetid-format", "warning", text))


def _puback_annotation(msg: Message, callback: int | None, puback: Any) -> None:
    if type(puback) is int and puback == 0:
        msg.annotations.append(
            Annotation("puback-failure", "warning", _puback_failure_text(callback))
        )
    else:
        msg.annotations.append(
            Annotation("puback-format", "warning", f"PUBACK should be 0 or 1, got {_json(puback)}")
        )


def _secret_annotation(msg: Message, args: Any) -> None:
    secrets = _mqtt_secrets(args)
    if secrets:
        paths = ", ".join(path for _, _, path, _ in secrets)
        msg.annotations.append(
            Annotation(
                "secret",
                "info",
                f"carries MQTT credentials ({paths}); redact before sharing (export --redact)",
            )
        )
