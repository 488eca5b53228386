"""The spec of one callback: everything the decoder and the views know about it.

A family module (``device``, ``accessories``, ``sensors``, ``ota``) builds one
``CallbackSpec`` per callbackName with ``callback(...)`` and lists it in its ``SPECS``;
``catalog`` gathers them. Adding a callback is that one edit: its direction, argument
checks, field meanings, summary, PUBACK meaning and fire-and-forget text all live in it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from proxy.core.model import Message
from proxy.core.protocol.common import Check, FieldsFn, SummaryFn

# (puback 0|1, the request's args or None when unknown) -> its meaning, or None for the
# spec's puback_ok/puback_fail: for callbacks whose PUBACK depends on the request.
PubackFn = Callable[[int, Any], str | None]


@dataclass(frozen=True, slots=True)
class CallbackSpec:
    """What the sources say about one callbackName.

    ``arguments``: the argument shapes in a line, for people.
    ``check``/``fields``/``summary``: see ``common.Check``, ``FieldsFn``, ``SummaryFn``.
    ``fire_and_forget``: a request may go unanswered without anything being wrong
    (5, 6, 7 are never answered; 21's acknowledgement may be missing);
    ``fire_and_forget_text`` says so on the request when nothing else can (21's case
    only the analysis can judge, Analysis._ota_no_ack).
    ``never_answered``: no reply exists at all (the device reboots or leaves).
    ``puback_ok``/``puback_fail``: what PUBACK 1/0 means for this callback (README 7.5),
    refined by ``puback_detail``; ``refusal_note`` is added to a PUBACK 0 annotation.
    ``outlet_head``: the summary's head for an outlet message when the label is not it.
    ``eager_args``: the analysis reads the arguments while correlating (or they hold
    secrets), so decode keeps them; the others are parsed again from ``raw`` when shown.
    ``carries_secrets``: a config object that may hold MQTT credentials.
    """

    number: int
    name: str
    label: str
    arguments: str
    check: Check
    fields: FieldsFn
    summary: SummaryFn
    app_sends: bool
    outlet_pushes: bool
    push_only: bool = False
    fire_and_forget: bool = False
    never_answered: bool = False
    fire_and_forget_text: str = ""
    puback_ok: str = "processed"
    puback_fail: str = "failed"
    puback_detail: PubackFn | None = None
    refusal_note: str = ""
    outlet_head: Callable[[Message], str] | None = None
    eager_args: bool = False
    carries_secrets: bool = False


def callback(
    number: int,
    name: str,
    label: str,
    *,
    arguments: str,
    check: Check,
    fields: FieldsFn,
    summary: SummaryFn,
    pushed: bool = False,
    push_only: bool = False,
    ff: bool = False,
    never: str = "",
    ok: str = "processed",
    fail: str = "failed",
    puback_detail: PubackFn | None = None,
    refusal_note: str = "",
    outlet_head: Callable[[Message], str] | None = None,
    eager: bool = False,
    secrets: bool = False,
) -> CallbackSpec:
    """A spec with the direction flags derived: ``pushed`` (the outlet also pushes it),
    ``push_only`` (only the outlet sends it), ``never`` (why no reply ever comes: the
    request's fire-and-forget text), ``ff`` (a reply may rightly be missing)."""
    return CallbackSpec(
        number=number,
        name=name,
        label=label,
        arguments=arguments,
        check=check,
        fields=fields,
        summary=summary,
        app_sends=not push_only,
        outlet_pushes=pushed or push_only,
        push_only=push_only,
        fire_and_forget=ff or bool(never),
        never_answered=bool(never),
        fire_and_forget_text=never,
        puback_ok=ok,
        puback_fail=fail,
        puback_detail=puback_detail,
        refusal_note=refusal_note,
        outlet_head=outlet_head,
        eager_args=eager,
        carries_secrets=secrets,
    )
