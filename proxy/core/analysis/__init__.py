"""The analysis of a capture (a package since issue 9): see :mod:`.facade` for
:class:`Analysis`, and its parts, each usable and tested alone: :mod:`.replies`
(reply matching), :mod:`.copies` (push copies), :mod:`.firmware` (firmware tracking),
:mod:`.ota` (the OTA state machine), :mod:`.schema` (the ``analyze --json`` document)."""

from proxy.core.analysis.common import (
    DEFAULT_REPLY_TIMEOUT,
    DEFAULT_STALL_WINDOW,
    FINAL_OUTCOMES,
    TARGETS,
    Counts,
    fmt_t,
    gc_paused,
)
from proxy.core.analysis.copies import COPY_WINDOW
from proxy.core.analysis.facade import Analysis, analyze
from proxy.core.analysis.firmware import DECO_REBOOT_GRACE, FW_CALLBACKS, device_key
from proxy.core.analysis.ota import OTA_PUSHES, OTA_RELATIONS
from proxy.core.analysis.schema import link_json, message_json, session_json
from proxy.core.protocol.ota import target_of_device_type

__all__ = [
    "COPY_WINDOW",
    "DECO_REBOOT_GRACE",
    "DEFAULT_REPLY_TIMEOUT",
    "DEFAULT_STALL_WINDOW",
    "FINAL_OUTCOMES",
    "FW_CALLBACKS",
    "OTA_PUSHES",
    "OTA_RELATIONS",
    "TARGETS",
    "Analysis",
    "Counts",
    "analyze",
    "device_key",
    "fmt_t",
    "gc_paused",
    "link_json",
    "message_json",
    "session_json",
    "target_of_device_type",
]
