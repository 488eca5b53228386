"""What leaves the TUI: the copied message, the JSON export and the trace export.

All three go through one redaction switch, on by default, because they leave the
tool: a copy pasted into a bug report must not carry the outlet's credentials unless
the user turned redaction off (and the status bar then says so). The trace goes
through the store's own writer and redaction (``tui.export`` only picks its events),
so an exported trace is the same format ``record`` writes.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import KW_ONLY, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from proxy.core.analysis import message_json
from proxy.core.events import Data

if TYPE_CHECKING:
    from proxy.core.analysis import Analysis
    from proxy.core.model import Message
    from tui.navigation import Notify


@dataclass(eq=False)
class Exporter:
    """Copies and exports rows, redacted while ``redacting``.

    ``label`` names the source (the export files are named after it), ``export_dir``
    is where they go, ``copy_text`` puts text on the clipboard.
    """

    analysis: Analysis
    _: KW_ONLY
    label: str
    export_dir: Path
    notify: Notify
    copy_text: Callable[[str], None]
    _redacting: bool = field(default=True, init=False)

    @property
    def redacting(self) -> bool:
        """Whether copies and exports hide credentials."""
        return self._redacting

    def toggle_redact(self) -> None:
        self._redacting = not self._redacting
        if self._redacting:
            self.notify("Copies and exports hide credentials", title="Redaction on", timeout=3)
        else:
            self.notify(
                "Copies and exports now hold credentials as captured",
                title="Redaction off",
                severity="warning",
                timeout=4,
            )

    def outgoing(self, msg: Message) -> tuple[Message, list[str]]:
        """The message as a copy or export shows it, and what was redacted."""
        if not self._redacting:
            return msg, []
        from proxy.store.redact import redact_message

        return redact_message(msg)

    def copy(self, msg: Message) -> None:
        shown, removed = self.outgoing(msg)
        text = json.dumps(message_json(shown), ensure_ascii=False)
        # lone surrogates have no UTF-8 form; their escapes keep the JSON valid
        self.copy_text(text.encode("utf-8", "backslashreplace").decode("utf-8"))
        note = f" ({len(removed)} credential(s) redacted)" if removed else ""
        self.notify(f"Copied message #{msg.id} as JSON{note}", timeout=2)

    def export_json(
        self, row_indices: Iterable[int], *, expression: str, ota_session: int | None
    ) -> None:
        """Write the rows ``row_indices`` as one JSON document, with how they were chosen
        (the filter ``expression``, the ``ota_session`` index shown alone)."""
        analysis = self.analysis
        ids: list[int] = []
        conns: list[dict[str, Any]] = []
        for ri in row_indices:
            row = analysis.rows[ri]
            if row.ref >= 0:
                ids.append(row.ref)
            else:
                conns.append({"t": row.t, "conn": row.conn, "event": row.kind})
        shown = set(ids)
        messages = []
        redacted = 0
        for i in ids:
            msg, removed = self.outgoing(analysis.messages[i])
            redacted += len(removed)
            messages.append(message_json(msg))
        document = {
            "version": 1,
            "source": self.label,
            "filter": expression,
            "ota_session": None if ota_session is None else ota_session + 1,
            "redacted": self._redacting,
            "messages": messages,
            "connections": conns,
            "links": [
                {"from": lk.src, "to": lk.dst, "relation": lk.relation, "reason": lk.reason}
                for lk in analysis.links
                if lk.src in shown and lk.dst in shown
            ],
        }
        path = self._write(".json", json.dumps(document, indent=1, ensure_ascii=False))
        if path is not None:
            note = self.redaction_note(redacted)
            self.notify(f"Wrote {len(ids):,} messages to {path}{note}", title="Exported", timeout=6)

    def export_trace(self, row_indices: Iterable[int]) -> None:
        """Write the rows ``row_indices`` as a trace (``view`` opens it again)."""
        from proxy.store.redact import RedactionError, redact_events
        from proxy.store.trace import write_trace
        from tui.export import visible_events

        events = visible_events(self.analysis, row_indices)
        redacted = 0
        if self._redacting:
            try:
                events, report = redact_events(events)
            except RedactionError as exc:
                self.notify(f"Nothing written: {exc}", severity="error")
                return
            redacted = len(report.removals)
        meta = {"exported_from": self.label, "redacted": self._redacting}
        path = self.export_path(".jsonl")
        try:
            write_trace(path, meta, events)
        except OSError as exc:
            self.notify(f"Could not write {path}: {exc.strerror or exc}", severity="error")
            return
        count = sum(isinstance(e, Data) for e in events)
        note = self.redaction_note(redacted)
        self.notify(f"Wrote {count:,} messages as a trace to {path}{note}", title="Exported")

    def redaction_note(self, redacted: int) -> str:
        """What the export message adds about credentials."""
        if not self._redacting:
            return " (not redacted: credentials as captured)"
        return f" ({redacted} credential(s) redacted)" if redacted else ""

    def export_path(self, suffix: str) -> Path:
        """The first free ``<source>-export-<n><suffix>`` in the export directory."""
        stem = Path(self.label.split(" ")[0]).stem or "invisproxy"
        n = 1
        while (path := self.export_dir / f"{stem}-export-{n}{suffix}").exists():
            n += 1
        return path

    def _write(self, suffix: str, text: str) -> Path | None:
        path = self.export_path(suffix)
        try:
            # a lone surrogate (from a valid "\\ud800" escape) is written as its
            # escape, which keeps the JSON valid
            path.write_text(text, encoding="utf-8", errors="backslashreplace")
        except OSError as exc:
            self.notify(f"Could not write {path}: {exc.strerror}", severity="error")
            return None
        return path
