"""What the parts of the analysis share: its defaults, outcomes and the words of its reasons."""

from __future__ import annotations

import gc
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple, get_args

from proxy.core.events import time_label
from proxy.core.model import OtaSession, Target

DEFAULT_STALL_WINDOW = 60.0
DEFAULT_REPLY_TIMEOUT = 30.0
FINAL_OUTCOMES = frozenset({"succeeded", "failed", "refused"})
TARGETS: frozenset[Target] = frozenset(get_args(Target))


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic GC while building a large analysis.

    Analysing a capture allocates millions of small objects that live as long as the
    analysis and form no cycles; each GC pass would walk all of them again, which made
    a 1M-message capture several times slower.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _a(word: str) -> str:
    """The indefinite article for ``word`` ("an outlet", "a deco")."""
    return "an" if word[:1].lower() in "aeiou" else "a"


def _module(target: str) -> str:
    """The cb12/cb20 block of a target's firmware."""
    return "IM" if target == "outlet" else "PM"


def _duration(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.1f} s"


def _compact(value: Any, limit: int = 40) -> str:
    try:
        text = json.dumps(value, separators=(",", ":"))
    except (TypeError, ValueError, RecursionError):
        return "(unprintable)"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def fmt_t(t: float) -> str:
    """A time as people read it: the local wall clock for recordings, seconds for
    synthetic traces (whose clock starts near 0). Total (never raises, for any float):
    every time in a reason goes through :func:`proxy.core.events.time_label`."""
    return time_label(t)


def describe(session: OtaSession) -> str:
    """How reasons name an update: "outlet update requested at ..."."""
    when = f" requested at {fmt_t(session.started)}" if session.request is not None else ""
    return f"{session.target} update{when}"


class Counts(NamedTuple):
    """Totals for the summary line (a bounded analysis counts what it forgot)."""

    messages: int
    connections: int
    links: int
    invalid: int
    sessions: int
