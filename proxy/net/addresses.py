"""Where a command listens and which outlet it reaches: one typed value each, from the CLI
down to the servers and clients, so that ``tcp_port`` never means two things."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Listener:
    """Where a command listens like an outlet. A port of None: that transport is off; 0:
    any free port."""

    host: str = "127.0.0.1"
    tcp_port: int | None = 3333
    ws_port: int | None = 8080


@dataclass(frozen=True, slots=True)
class Outlet:
    """The outlet a command connects to."""

    host: str
    tcp_port: int = 3333
    ws_port: int = 80
