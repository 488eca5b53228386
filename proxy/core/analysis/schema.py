"""The ``analyze --json`` document (DESIGN 4.4), in one place for the CLI and the TUI."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from proxy.core.events import Intervention
from proxy.core.model import Link, Message, OtaSession

VERSION = 1


def message_json(m: Message) -> dict[str, Any]:
    return {
        "id": m.id,
        "t": m.t,
        "conn": m.conn,
        "transport": m.transport,
        "from": m.side,
        "kind": m.kind,
        "callback": m.callback if m.kind != "invalid" else None,
        "name": m.name,
        "packetID": m.packet_id,
        "sn": m.sn,
        "puback": m.puback,
        "args": m.args,
        "annotations": [
            {"code": a.code, "severity": a.severity, "text": a.text} for a in m.annotations
        ],
        "intervention": intervention_json(m.intervention),
    }


def intervention_json(mark: Intervention | None) -> dict[str, Any] | None:
    """As DESIGN 4.1 spells it in a trace (``why`` only when there is one)."""
    if mark is None:
        return None
    out: dict[str, Any] = {
        "action": mark.action,
        "by": mark.by,
        "rule": mark.rule,
        "held": mark.held,
    }
    if mark.why is not None:
        out["why"] = mark.why
    return out


def link_json(link: Link) -> dict[str, Any]:
    return {"from": link.src, "to": link.dst, "relation": link.relation, "reason": link.reason}


def session_json(s: OtaSession) -> dict[str, Any]:
    """``app_outcome`` / ``app_reason`` only for sessions an intervention touched, as the
    facade's ``app_view`` set them."""
    out: dict[str, Any] = {
        "request": s.request,
        "target": s.target,
        "method": s.method,
        "outcome": s.outcome,
        "messages": list(s.messages),
        "progress": [[t, dt, pct] for t, dt, pct in s.progress],
        "fw_before": s.fw_before,
        "fw_expected": s.fw_expected,
        "fw_after": s.fw_after,
        "verified": s.verified,
        "reason": s.reason,
    }
    if s.app_outcome is not None:
        out["app_outcome"] = s.app_outcome
        out["app_reason"] = s.app_reason
    return out


def document(
    messages: Iterable[Message], links: Iterable[Link], sessions: Iterable[OtaSession]
) -> dict[str, Any]:
    """The whole document, from what an analysis holds."""
    return {
        "version": VERSION,
        "messages": [message_json(m) for m in messages],
        "links": [link_json(link) for link in links],
        "ota": [session_json(s) for s in sessions],
    }
