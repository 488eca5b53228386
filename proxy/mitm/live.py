"""A running proxy: the relay, the capture it records, and whoever consumes the events.

Shared by ``run`` and ``demo`` so both record and analyse the same way. The capture
is written before the bytes are forwarded (nothing forwarded is ever missing from it),
and so is the consumer fed (the analysis, or the TUI's queue): a few microseconds per
message, where batching them after forwarding made every hundredth round trip wait for
a batch (p99 1.3 ms against 0.7 ms, tests/bench/bench_relay.py). Slow work (printing)
goes in ``after``, which runs once traffic pauses.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from proxy.core.errors import UserError
from proxy.core.events import Event

if TYPE_CHECKING:
    from proxy.core.analysis import Analysis
    from proxy.core.rules import RuleSet
    from proxy.mitm.intervene import Interventions
    from proxy.mitm.relay import Relay
    from proxy.store.capture import CaptureWriter


def default_capture_path(prefix: str = "invis", now: float | None = None) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    return Path("captures") / f"{prefix}-{stamp}.invcap"


def open_capture(path: Path, meta: Mapping[str, Any], *, make_folder: bool) -> CaptureWriter:
    """A capture writer for live recording, with errors a user understands."""
    from proxy.store.capture import CaptureWriter

    try:
        if make_folder:
            path.parent.mkdir(parents=True, exist_ok=True)
        return CaptureWriter(path, dict(meta), flush_each=True)
    except FileExistsError:
        raise UserError(f"{path} already exists; choose another --record file") from None
    except OSError as exc:
        raise UserError(f"cannot write the capture {path}: {exc.strerror or exc}") from None


class HeadlessPrinter:
    """Prints every new timeline row (message, open, close) of an analysis fed elsewhere.

    Called as a sink it ignores the event and prints what is new. Given a
    ``BoundedAnalysis`` it tells it what has been printed, so memory stays flat.
    """

    def __init__(self, analysis: Analysis, echo: bool = True) -> None:
        self.analysis = analysis
        self.echo = echo
        self.printed = 0  # rows
        self.messages_printed = 0  # message ids below this are printed
        self.late_printed = 0
        self._forget: Callable[[int, int, int], None] | None = getattr(
            analysis, "forget_printed", None
        )

    def __call__(self, event: Event) -> None:
        self.flush()

    def flush(self) -> None:
        from proxy.core import report

        analysis = self.analysis
        rows = analysis.rows
        shown_before = self.messages_printed
        lines: list[str] = []
        if self.printed < len(rows):
            for row in rows[self.printed :]:
                lines += report.format_row(analysis, row)
                if row.kind == "message":
                    self.messages_printed = row.ref + 1
            self.printed = len(rows)
        # Remarks that came later (a timeout, a restart, a stall) on messages printed
        # before: after the rows that caused them. A message printed just now shows
        # its remarks with it.
        late = analysis.late_annotations
        for msg_id, index in late[self.late_printed :]:
            if msg_id < shown_before:
                lines.append(report.format_late_annotation(analysis, msg_id, index))
        self.late_printed = len(late)
        if lines and self.echo:
            print("\n".join(lines), flush=True)
        if self._forget is not None:
            # shown now: a bounded analysis may let go of it (proxy/retention.py)
            self._forget(self.printed, self.messages_printed, self.late_printed)


class LiveProxy:
    """Relay + recording + one consumer of the events, started and stopped together."""

    def __init__(
        self,
        outlet: str,
        consumer: Callable[[Event], object],
        *,
        after: Callable[[Event], object] | None = None,
        outlet_tcp_port: int = 3333,
        outlet_ws_port: int = 80,
        listen_host: str = "127.0.0.1",
        tcp_port: int | None = 3333,
        ws_port: int | None = 8080,
        record: Path | None = None,
        make_folder: bool = False,
        meta: Mapping[str, Any] | None = None,
        rules: RuleSet | None = None,
    ) -> None:
        self.outlet = outlet
        self.outlet_tcp_port = outlet_tcp_port
        self.outlet_ws_port = outlet_ws_port
        self.consumer = consumer
        self.after = after
        self.listen_host = listen_host
        self.tcp_port = tcp_port
        self.ws_port = ws_port
        self.record = record
        self.make_folder = make_folder
        self.meta = dict(meta or {})
        self.rules = rules
        self.writer: CaptureWriter | None = None
        self.relay: Relay | None = None

    async def start(self) -> None:
        from proxy.mitm.relay import Relay

        if self.record is not None:
            meta = {
                "outlet": self.outlet,
                "outlet_tcp_port": self.outlet_tcp_port if self.tcp_port is not None else None,
                "outlet_ws_port": self.outlet_ws_port if self.ws_port is not None else None,
                **self.meta,
            }
            self.writer = open_capture(self.record, meta, make_folder=self.make_folder)
        self.relay = Relay(
            self.outlet,
            outlet_tcp_port=self.outlet_tcp_port,
            outlet_ws_port=self.outlet_ws_port,
            listen_host=self.listen_host,
            tcp_port=self.tcp_port,
            ws_port=self.ws_port,
            sinks=[self.writer.write, self.consumer] if self.writer else [self.consumer],
            deferred_sinks=[self.after] if self.after else [],
            rules=self.rules,
        )
        try:
            await self.relay.start()
        except BaseException:
            if self.writer is not None:
                self.writer.close()
                Path(self.writer.path).unlink(missing_ok=True)
                self.writer = None
            raise

    @property
    def interventions(self) -> Interventions | None:
        """The relay's rules, intercept filter and held messages (None before start)."""
        return self.relay.interventions if self.relay else None

    @property
    def tcp_address(self) -> tuple[str, int] | None:
        return self.relay.tcp_address if self.relay else None

    @property
    def ws_address(self) -> tuple[str, int] | None:
        return self.relay.ws_address if self.relay else None

    def describe(self) -> list[str]:
        """What it listens on and where it records, for the user."""
        lines = []
        if self.tcp_address:
            h, p = self.tcp_address
            lines.append(f"relaying TCP {h}:{p} -> {self.outlet}:{self.outlet_tcp_port}")
        if self.ws_address:
            h, p = self.ws_address
            lines.append(
                f"relaying WebSocket ws://{h}:{p}/ws -> ws://{self.outlet}:{self.outlet_ws_port}/ws"
            )
        lines.append(f"recording to {self.writer.path}" if self.writer else "not recording")
        return lines

    def flush(self) -> None:
        """Run ``after`` for the events forwarded so far, now."""
        if self.relay is not None:
            self.relay.addon.flush()

    async def stop(self) -> str | None:
        """Stop relaying and close the capture; a line saying where it is, if any."""
        if self.relay is not None:
            await self.relay.stop()
            if self.relay.addon.sink_errors:
                print(
                    f"warning: {self.relay.addon.sink_errors} sink call(s) failed (see above)",
                    file=sys.stderr,
                )
        if self.writer is not None:
            self.writer.close()
            return f"capture {self.writer.path}: {self.writer.count} events"
        return None
