"""The ``invis_capture`` option: mitmdump/mitmweb recording to a capture file.

The embedded relay records through its own sinks (proxy/mitm/live.py); this is for
stock mitmproxy running ``proxy/addon.py``, where an option is the only way in. The
capture is an immediate sink, so it holds every byte mitmproxy forwarded.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from mitmproxy import ctx

from proxy.mitm.options import CAPTURE
from proxy.mitm.sinks import Sink, SinkBus

if TYPE_CHECKING:
    from proxy.store.capture import CaptureWriter

logger = logging.getLogger(__name__)

OPTION = CAPTURE


class CaptureRecorder:
    """Opens the capture named by ``invis_capture`` and feeds it from ``bus``.

    Not a mitmproxy addon of its own: the event addon calls it, so that at shutdown
    the capture closes only after the last Close has been written.
    """

    def __init__(self, bus: SinkBus) -> None:
        self.bus = bus
        self._capture: CaptureWriter | None = None
        self._sink: Sink | None = None

    def configure(self, updated: set[str]) -> None:
        if OPTION in updated:
            self.close()
            if ctx.options.invis_capture:
                self._open(ctx.options.invis_capture)

    def _open(self, path: str) -> None:
        from proxy.store.capture import CaptureWriter

        meta = {"source": "mitmproxy", "modes": list(ctx.options.mode)}
        self._capture = CaptureWriter(Path(path), meta, flush_each=True)
        self._sink = self._capture.write
        self.bus.add_sink(self._sink)
        logger.info(f"invisproxy: recording to {path}")

    def close(self) -> None:
        if self._sink is not None:
            self.bus.remove_sink(self._sink)
            self._sink = None
        if self._capture is not None:
            capture, self._capture = self._capture, None
            capture.close()
