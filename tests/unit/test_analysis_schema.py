"""The ``analyze --json`` schema alone (proxy.core.analysis.schema, DESIGN 4.4)."""

from __future__ import annotations

import json

from proxy.core.analysis.schema import document, link_json, message_json, session_json
from proxy.core.framing import Frame
from proxy.core.model import Annotation, Link, OtaSession
from proxy.core.protocol import decode
from tests.unit.analysis_parts import Messages


def test_a_message_has_the_fields_of_design_4_4_in_its_order() -> None:
    msg = Messages().add(0.01, "c1", "app", 221040, 20)
    msg.annotations.append(Annotation("secret", "warning", "a password"))
    assert message_json(msg) == {
        "id": 0,
        "t": 0.01,
        "conn": "c1",
        "transport": "tcp",
        "from": "app",
        "kind": "request",
        "callback": 20,
        "name": msg.name,
        "packetID": 221040,
        "sn": None,
        "puback": None,
        "args": None,
        "annotations": [{"code": "secret", "severity": "warning", "text": "a password"}],
        "intervention": None,
    }
    assert list(message_json(msg)) == [
        "id", "t", "conn", "transport", "from", "kind", "callback", "name", "packetID",
        "sn", "puback", "args", "annotations", "intervention",
    ]  # fmt: skip


def test_an_invalid_message_has_a_null_callback() -> None:
    msg = decode(Frame(1.0, "c1", "app", b"{nope", None, "not JSON"), 0, "tcp")
    assert msg.kind == "invalid"
    assert message_json(msg)["callback"] is None


def test_links_and_sessions() -> None:
    assert link_json(Link(0, 1, "response", "why")) == {
        "from": 0,
        "to": 1,
        "relation": "response",
        "reason": "why",
    }
    s = OtaSession(target="outlet", request=5, started=1.0, last_activity=2.0)
    s.messages.extend([5, 9])
    s.progress.append((1.5, 1, 50))
    s.outcome = "succeeded"
    doc = session_json(s)
    assert list(doc) == [
        "request", "target", "method", "outcome", "messages", "progress", "fw_before",
        "fw_expected", "fw_after", "verified", "reason",
    ]  # fmt: skip
    assert doc["messages"] == [5, 9] and doc["progress"] == [[1.5, 1, 50]]
    assert doc["messages"] is not s.messages  # a document, not a view of the session


def test_the_document_is_json_with_version_1() -> None:
    m = Messages()
    m.add(0.01, "c1", "app", 1, 12)
    doc = document(m, [Link(0, 0, "response", "r")], [])
    assert json.loads(json.dumps(doc)) == doc
    assert list(doc) == ["version", "messages", "links", "ota"] and doc["version"] == 1
