"""The status bar's line, fitted to its width (no Textual here).

Cut at its end, a line too long for 80 columns loses what is on the right, and that is
where "redact: OFF" sits (copies then hold credentials). So each part has a rank: when
the line does not fit, the least important part takes its compact form, then goes,
then the next one; parts marked ``keep`` never go, and a long filter or progress text
is cut with "…" last. The redaction state always stays: "redact: OFF" in full.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich.cells import cell_len

SEPARATOR = " │ "
ELLIPSIS = "…"


@dataclass(frozen=True, slots=True)
class Part:
    text: str
    rank: int  # the lowest rank gives way first
    short: str | None = None  # a compact form, tried before the part is dropped
    keep: bool = False  # never dropped
    elastic: bool = False  # may be cut with "…" when dropping did not make room


def crop(text: str, cells: int) -> str:
    """``text`` in at most ``cells`` cells (at least one), ending in "…" when cut."""
    if cell_len(text) <= cells:
        return text
    kept = ""
    for char in text:
        if cell_len(kept + char) + 1 > cells:
            break
        kept += char
    return kept + ELLIPSIS


def fit(parts: Sequence[Part], width: int) -> str:
    """The parts joined, made to fit ``width`` cells as described in the module.

    Only when the kept parts alone are wider than ``width`` is the result wider (the
    widget then cuts it); an elastic part is never cut below one cell.
    """
    return SEPARATOR.join(t for t in fitted(parts, width) if t is not None)


def fitted(parts: Sequence[Part], width: int) -> list[str | None]:
    """What :func:`fit` shows of each part: its text, short form or cut, None if dropped."""
    texts: list[str | None] = [p.text for p in parts]

    def cells() -> int:
        return cell_len(SEPARATOR.join(t for t in texts if t is not None))

    if cells() <= width:
        return texts
    for i in sorted(range(len(parts)), key=lambda i: parts[i].rank):
        part = parts[i]
        if part.short is not None:
            texts[i] = part.short
            if cells() <= width:
                return texts
        if not part.keep:
            texts[i] = None
            if cells() <= width:
                return texts
    elastic = [i for i, p in enumerate(parts) if p.elastic and texts[i] is not None]
    for i in sorted(elastic, key=lambda i: -cell_len(texts[i] or "")):
        text = texts[i] or ""
        texts[i] = crop(text, max(cell_len(text) - (cells() - width), 1))
        if cells() <= width:
            break
    return texts


def status_parts(
    *,
    messages: int,
    shown: int | None,
    filtering: bool,
    expression: str,
    ota_session: int | None,
    streaming: bool,
    following: bool,
    new_rows: int,
    time_mode: str,
    redacting: bool,
    progress: str,
    rate: str,
    problems: int,
    intercept: str = "",
    held: int = 0,
) -> list[Part]:
    """The status bar's parts, in order. ``shown`` is None when every row is on show;
    ``ota_session`` is the index of the update shown alone; ``problems`` counts what was
    wrong with a finished file; ``rate`` is appended to ``progress``; ``intercept`` is
    the live intercept filter and ``held`` how many messages wait for the user (never
    dropped from the line: a held message stalls its direction)."""
    parts = [Part(f"{messages:,} msgs", 90, keep=True)]
    if held:
        parts.append(Part(f"⏸ {held:,} held", 95, keep=True))
    if intercept:
        parts.append(Part(f"intercept: {intercept}", 80, "intercept…", keep=True, elastic=True))
    if shown is not None:
        text = f"{shown:,} shown"
        parts.append(
            Part(f"{text} (filtering…)", 60, f"{text}…", keep=True)
            if filtering
            else Part(text, 60, keep=True)
        )
    if expression:
        parts.append(Part(f"filter: {expression}", 70, keep=True, elastic=True))
    if ota_session is not None:
        parts.append(Part(f"OTA #{ota_session + 1} only", 75, f"OTA #{ota_session + 1}", keep=True))
    if streaming:
        if following:
            parts.append(Part("● following", 40, "●"))
        else:
            new = f" · {new_rows:,} new" if new_rows else ""
            parts.append(Part(f"⏸ paused{new} (End/F)", 40, f"⏸{new}", keep=True))
    parts.append(Part(f"time: {time_mode}", 10))
    if redacting:
        parts.append(Part("redact: on", 20, "redact ✓", keep=True))
    else:
        parts.append(Part("redact: OFF", 100, keep=True))
    if progress:
        parts.append(Part(progress + rate, 50, progress if rate else None, keep=True, elastic=True))
    elif problems:
        parts.append(Part(f"{problems} problem(s) reading the file", 30, f"{problems} problem(s)"))
    return parts
