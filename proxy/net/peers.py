"""Addresses as people read them."""

from __future__ import annotations

from typing import Any, Final

WS_PATH: Final = "/ws"


def host_text(host: str) -> str:
    """``host`` as it stands before ``:port`` (an IPv6 literal gets its brackets)."""
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def peer_text(peer: Any) -> str:
    """``host:port`` for a socket address tuple (IPv4 or IPv6), else its text."""
    if isinstance(peer, tuple) and len(peer) >= 2:
        return f"{host_text(str(peer[0]))}:{peer[1]}"
    return str(peer)


def ws_url(host: str, port: int | None, path: str = WS_PATH) -> str:
    """The WebSocket URL of ``host:port``."""
    return f"ws://{host_text(host)}:{port}{path}"
