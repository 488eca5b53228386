"""The OTA panel: every firmware update at a glance; choosing one filters the timeline."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual.message import Message as TextualMessage
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from proxy.core.model import OtaSession

if TYPE_CHECKING:
    from proxy.core.analysis import Analysis

SPARKS = "▁▂▃▄▅▆▇█"
OUTCOME_STYLE = {
    "succeeded": "bold green",
    "failed": "bold red",
    "refused": "bold yellow",
    "stalled": "bold red",
    "in-progress": "bold cyan",
}


def sparkline(values: list[int], width: int) -> str:
    """Percentages 0-100 as block characters, resampled to at most ``width`` cells."""
    if not values:
        return ""
    if len(values) > width:
        step = len(values) / width
        values = [values[min(int((i + 1) * step) - 1, len(values) - 1)] for i in range(width)]
    return "".join(SPARKS[min(max(v, 0), 100) * (len(SPARKS) - 1) // 100] for v in values)


def bar(percent: int, width: int) -> str:
    filled = max(0, min(percent, 100)) * width // 100
    return "█" * filled + "░" * (width - filled)


def phases(session: OtaSession) -> list[tuple[str, list[int]]]:
    """The cb22 series split by phase: the outlet's WWW partition (3) first, then its
    main firmware; a deco update has one phase, the deco's firmware (device_type 2)."""
    www = [p for _, dt, p in session.progress if dt == 3]
    main = [p for _, dt, p in session.progress if dt != 3]
    out = []
    if www:
        out.append(("www", www))
    if main or not www:
        out.append(("deco" if session.target == "deco" else "main", main))
    return out


def session_prompt(number: int, session: OtaSession, width: int) -> Text:
    """Two lines: what the update is and how it ended; then its progress per phase."""
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append(f"#{number} {session.target}", style="bold")
    if session.method:
        text.append(f" ({session.method})")
    text.append(" ")
    text.append(session.outcome, style=OUTCOME_STYLE.get(session.outcome, "bold"))
    if session.outcome == "in-progress":
        text.append(f" ({session.phase})", style="dim")
    saw = session.app_outcome
    if saw is not None and saw != session.outcome:
        text.append(" · app saw ")
        text.append(saw, style=OUTCOME_STYLE.get(saw, "bold"))
    if session.fw_before or session.fw_after or session.fw_expected:
        after = session.fw_after or f"({session.fw_expected or '?'})"
        text.append(f" {session.fw_before or '?'} → {after}")
        if session.verified is True:
            text.append(" ✓ verified", style="bold green")
        elif session.verified is False:
            text.append(" ✗ mismatch", style="bold red")
    if session.request is None:
        text.append(" (no cb21 in capture)", style="dim")
    text.append("\n ")
    parts = phases(session)
    spark_width = max((width - 2) // len(parts) - 16, 3)
    for name, series in parts:
        last = series[-1] if series else 0
        text.append(f" {name} ")
        text.append(bar(last, 5), style="green" if last >= 100 else "cyan")
        text.append(f"{last:>4}% ")
        text.append(f"{sparkline(series, spark_width):<{spark_width}}", style="magenta")
    return text


class OtaPanel(OptionList):
    """One entry per OTA session; Enter shows only that session in the timeline."""

    ALLOW_MAXIMIZE = True

    class SessionChosen(TextualMessage):
        """The user chose a session to filter to (None = all traffic)."""

        def __init__(self, index: int | None) -> None:
            super().__init__()
            self.index = index

    def __init__(self, analysis: Analysis, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.analysis = analysis
        self.border_title = "OTA updates"
        self._shown: list[tuple[object, ...]] = []

    def on_resize(self) -> None:
        self.data_changed()  # sparklines are as wide as the panel: width is in the state

    def data_changed(self) -> None:
        """Redraw the sessions whose state changed; add new ones."""
        width = max(self.scrollable_content_region.width, 30)
        self.analysis.app_view()  # the sessions' app_outcome, when interventions made one
        sessions = self.analysis.sessions
        for i, session in enumerate(sessions):
            state = (
                width,
                session.outcome,
                session.phase,
                session.method,
                session.request,
                len(session.progress),
                session.fw_before,
                session.fw_expected,
                session.fw_after,
                session.verified,
                session.app_outcome,
            )
            if i < len(self._shown) and self._shown[i] == state:
                continue
            prompt = session_prompt(i + 1, session, width)
            if i < self.option_count:
                self.replace_option_prompt_at_index(i, prompt)
                self._shown[i] = state
            else:
                self.add_option(Option(prompt, id=str(i)))
                self._shown.append(state)
        count = len(sessions)
        self.border_subtitle = f"{count} update{'s' if count != 1 else ''}"

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        option_id = event.option.id
        index = None if option_id is None else int(option_id)
        self.post_message(self.SessionChosen(index))
