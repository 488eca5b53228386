"""The options invisproxy adds to mitmproxy (``--set NAME=VALUE``, ``:set`` in the
console, mitmweb's options page), declared in one table so that each appears once."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from mitmproxy.addonmanager import Loader

CAPTURE: Final = "invis_capture"
RULES: Final = "invis_rules"
WS_PATH: Final = "invis_ws_path"

OPTIONS: Final[tuple[tuple[str, str, str], ...]] = (
    (CAPTURE, "", "Record the InvisOutlet traffic to this invisproxy capture file (.invcap)."),
    (
        WS_PATH,
        "/ws",
        "Request path of the InvisOutlet WebSocket; other WebSockets are not recorded.",
    ),
    (
        RULES,
        "",
        "A TOML file of invisproxy rules ([[rule]] tables with match and action, e.g. "
        'match = "cb:21 dir:app", action = "reply puback=0") applied to the '
        "InvisOutlet traffic; reloaded when it changes.",
    ),
)
"""Name, default and help of each; every one is a string ("" for a file: off)."""


def add_options(loader: Loader) -> None:
    for name, default, help_text in OPTIONS:
        loader.add_option(name, str, default, help_text)
