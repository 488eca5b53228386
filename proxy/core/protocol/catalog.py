"""The callback catalog: every family's specs by number, and what they say in general.

To add a callback, add its spec to its family's ``SPECS``; nothing else names it.
"""

from __future__ import annotations

from typing import Any, Final

from proxy.core.protocol import accessories, device, ota, sensors
from proxy.core.protocol.common import _json
from proxy.core.protocol.spec import CallbackSpec

FAMILIES: Final = (device, accessories, sensors, ota)


def _build(specs: tuple[CallbackSpec, ...]) -> dict[int, CallbackSpec]:
    """The catalog in number order; two specs for one number are a programming error."""
    catalog: dict[int, CallbackSpec] = {}
    for spec in sorted(specs, key=lambda s: s.number):
        if spec.number in catalog:
            raise ValueError(f"callback {spec.number} is specified twice")
        catalog[spec.number] = spec
    return catalog


CATALOG: Final[dict[int, CallbackSpec]] = _build(
    tuple(spec for family in FAMILIES for spec in family.SPECS)
)

# Derived, for callers that want the set; nothing here reads it.
FIRE_AND_FORGET: Final[frozenset[int]] = frozenset(
    n for n, s in CATALOG.items() if s.fire_and_forget
)


def name_of(callback: int | None) -> str:
    """The callback's name; "" for None (a pure ack before correlation)."""
    if callback is None:
        return ""
    spec = CATALOG.get(callback)
    return spec.name if spec is not None else f"unknown callback {callback}"


def is_fire_and_forget(cb: int | None) -> bool:
    """Whether a request of this callback may rightly go unanswered (read from the spec,
    as every other property is, so a callback's spec is all that says it)."""
    spec = CATALOG.get(cb) if cb is not None else None
    return spec is not None and spec.fire_and_forget


def puback_meaning(callback: int | None, puback: Any, request_args: Any = None) -> str:
    """What a PUBACK value means for this callback (README 7.5).

    ``request_args`` refines it where the request matters (cb27's sub-command).
    """
    if type(puback) is not int or puback not in (0, 1):
        return f"not 0 or 1: {_json(puback)}"
    spec = CATALOG.get(callback) if callback is not None else None
    if spec is None:
        return "processed" if puback == 1 else "failed"
    if spec.puback_detail is not None:
        text = spec.puback_detail(puback, request_args)
        if text is not None:
            return text
    return spec.puback_ok if puback == 1 else spec.puback_fail
