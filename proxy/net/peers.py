"""Addresses as people read them."""

from __future__ import annotations

from typing import Any, Final

WS_PATH: Final = "/ws"


def peer_text(peer: Any) -> str:
    """``host:port`` for a socket address tuple (IPv4 or IPv6), else its text."""
    if isinstance(peer, tuple) and len(peer) >= 2:
        host = f"[{peer[0]}]" if ":" in str(peer[0]) else peer[0]
        return f"{host}:{peer[1]}"
    return str(peer)


def ws_url(host: str, port: int | None, path: str = WS_PATH) -> str:
    """The WebSocket URL of ``host:port`` (an IPv6 literal gets its brackets)."""
    host = f"[{host}]" if ":" in host and not host.startswith("[") else host
    return f"ws://{host}:{port}{path}"
