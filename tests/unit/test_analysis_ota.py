"""OTA verdicts of the analysis beyond the scenario suite (issue 8 items 13-16).

Each test builds a short capture by hand, as the wire would carry it, and checks the
verdict the protocol reference implies for it.
"""

from __future__ import annotations

import json
from typing import Any

from proxy.core import protocol
from proxy.core.analysis import Analysis, analyze
from proxy.core.events import Close, Data, Event, Open
from tests.scenarios.build_traces import Timeline

SN = "11B27540076"
UPDATES = {
    "IM": {"fw_rev": "0.0.1", "available_fw_rev": "0.0.2"},
    "PM": {"fw_rev": "0.5.0", "available_fw_rev": "0.5.1"},
}


class Wire(Timeline):
    """Events one after another; ``dt`` seconds apart."""

    def __init__(self) -> None:
        super().__init__(first_port=50000)
        self.events: list[Event] = []

    def open(self, conn: str, transport: str = "ws", dt: float = 0.01) -> None:
        port = 80 if transport == "ws" else 3333
        self.events.append(
            Open(self._at(dt), conn, transport, f"127.0.0.1:{next(self.ports)}", f"10.0.0.5:{port}")  # type: ignore[arg-type]
        )

    def send(self, conn: str, side: str, obj: dict[str, Any], dt: float = 0.01) -> None:
        data = json.dumps(obj).encode() + b"\n"
        self.events.append(Data(self._at(dt), conn, side, data))  # type: ignore[arg-type]

    def req(self, conn: str, pid: int, cb: int, args: Any = None, dt: float = 0.01) -> None:
        payload: dict[str, Any] = {"callbackName": cb}
        if args is not None:
            payload["callbackArgs"] = args
        self.send(conn, "app", {"packetID": pid, "payload": payload}, dt)

    def out(self, conn: str, pid: int, dt: float = 0.5, **fields: Any) -> None:
        cb, args = fields.pop("cb", None), fields.pop("args", None)
        obj: dict[str, Any] = {"sn": SN, "packetID": pid, **fields}
        if cb is not None:
            obj["payload"] = {"callbackName": cb, "callbackArgs": args}
        self.send(conn, "outlet", obj, dt)

    def close(self, conn: str, by: str | None, dt: float = 0.01) -> None:
        self.events.append(Close(self._at(dt), conn, by))  # type: ignore[arg-type]

    # The recurring exchanges, as in the scenario builder: each is the calls it replaces.

    def offer(self, conn: str, pid: int) -> None:
        """The app's cb20 and the outlet's answer offering ``UPDATES``."""
        self.req(conn, pid, 20)
        self.out(conn, pid, cb=20, args=UPDATES, PUBACK=1, dt=0.02)

    def request(self, conn: str, pid: int, target_method: list[int], puback: int = 1) -> None:
        """The app's cb21 and the outlet's bare PUBACK ``puback`` to it."""
        self.req(conn, pid, 21, target_method)
        self.out(conn, pid, PUBACK=puback, dt=0.02)


def notes(analysis: Analysis, msg_id: int, code: str) -> list[str]:
    return [a.text for a in analysis.messages[msg_id].annotations if a.code == code]


def test_an_ack_with_a_status_shaped_payload_opens_no_phantom_update() -> None:
    """A deco request acked with PUBACK plus a payload [1, 1]: before, the payload was
    read as a revB outlet status, which opened an outlet update "not in the capture",
    and the app's real outlet cb21 after it was called a retry of that phantom."""
    w = Wire()
    w.open("c1")
    w.offer("c1", 100001)  # 0-1
    w.req("c1", 100002, 21, [2, 1])  # 2
    w.out("c1", 100002, cb=21, args=[1, 1], PUBACK=1, dt=0.001)  # 3: the ack
    w.req("c1", 100003, 21, [1, 0], dt=1.0)  # 4: an outlet update
    w.out("c1", 100003, PUBACK=1, dt=0.02)  # 5
    a = analyze(w.events)
    assert [(s.request, s.target) for s in a.sessions] == [(2, "deco"), (4, "outlet")]
    assert {(link.src, link.dst, link.relation) for link in a.links} >= {
        (2, 3, "ota-ack"),
        (4, 5, "ota-ack"),
    }
    assert a.messages[3].kind == "response"
    assert not a.messages[4].has("ota-retry")


def test_the_sync_form_on_the_requesting_connection_leaves_the_ack_missing() -> None:
    """Status args without a PUBACK are the revB synchronous status, not the ack: the
    request stays unacknowledged, and says so once its reply window closes."""
    w = Wire()
    w.open("c1", "tcp")
    w.req("c1", 414883, 21, [1, 0])  # 0
    w.out("c1", 414883, cb=21, args=[1, 1], dt=0.3)  # 1: sync form, same connection
    w.out("c1", 600001, cb=22, args=[1, 50], dt=20.0)  # 2
    w.out("c1", 600002, cb=22, args=[1, 100], dt=20.0)  # 3: past the 30 s window
    a = analyze(w.events)
    first = a.links[0]
    assert (first.src, first.dst, first.relation) == (0, 1, "ota-sync")
    (text,) = notes(a, 0, "fire-and-forget")
    assert "no reply within 30 s" in text
    assert "outlet revision B" in text and "synchronous cb21" in text


def test_an_outlet_request_without_ack_on_an_unknown_revision_says_so() -> None:
    """WebSocket alone does not prove revA (protocol/README 1.4): no ack, no restart."""
    w = Wire()
    w.open("c1", "ws")
    w.req("c1", 100002, 21, [1, 0])  # 0
    w.out("c1", 900001, cb=22, args=[1, 10], dt=1.0)  # 1
    w.out("c1", 900002, cb=22, args=[1, 90], dt=40.0)  # 2
    a = analyze(w.events)
    (text,) = notes(a, 0, "fire-and-forget")
    assert "outlet revision unknown" in text
    assert "revA" in text and "revB" in text  # both possibilities, neither claimed


def test_an_unknown_closer_is_no_proof_of_revb() -> None:
    w = Wire()
    w.open("c1", "tcp")
    w.req("c1", 100002, 21, [1, 0])  # 0
    w.close("c1", None, dt=0.2)
    a = analyze(w.events)
    (text,) = notes(a, 0, "fire-and-forget")
    assert "connection c1 closed before a reply came" in text
    assert "outlet revision unknown" in text


def test_an_app_that_closes_inside_the_stall_window_did_not_give_up() -> None:
    w = Wire()
    w.open("c1")
    w.request("c1", 100002, [1, 0])  # 0-1
    w.out("c1", 900001, cb=22, args=[1, 10], dt=1.0)  # 2
    w.close("c1", "app", dt=59.0)
    w.open("c2", dt=1.0)
    w.out("c2", 900002, cb=11, args=[1, {}], dt=30.0)  # 3
    a = analyze(w.events)
    assert not any(m.has("app-gave-up") for m in a.messages)
    assert a.sessions[0].outcome == "stalled"


def test_another_app_on_a_live_connection_is_not_the_requesting_app() -> None:
    """A cb21 from a second connection while the first app's is still open is another
    app asking, not the first one giving up."""
    w = Wire()
    w.open("c1")
    w.open("c2")
    w.request("c1", 100002, [1, 0])  # 0-1
    w.out("c1", 900001, cb=22, args=[1, 10], dt=1.0)  # 2
    w.req("c2", 200002, 21, [1, 0], dt=70.0)  # 3
    a = analyze(w.events)
    assert not a.messages[3].has("app-gave-up")
    assert a.sessions[0].outcome == "stalled"


def test_a_refusal_the_app_answers_with_a_new_request_is_not_ignored() -> None:
    w = Wire()
    w.open("c1")
    w.request("c1", 100002, [1, 0], puback=0)  # 0-1
    w.req("c1", 100003, 21, [1, 0], dt=10.0)  # 2
    w.out("c1", 100003, PUBACK=1, dt=0.02)  # 3
    w.out("c1", 900001, cb=11, args=[1, {}], dt=70.0)  # 4
    a = analyze(w.events)
    assert not a.messages[1].has("refusal-ignored")
    assert [s.outcome for s in a.sessions] == ["refused", "stalled"]


def test_a_refusal_with_no_offer_in_the_capture_claims_no_reason() -> None:
    w = Wire()
    w.open("c1")
    w.request("c1", 100002, [2, 0], puback=0)  # 0-1
    a = analyze(w.events)
    (text,) = notes(a, 1, "puback-failure")
    assert "deco target" in text
    assert "no cb20 reply before it" in text and "is not known" in text
    assert "up to date" not in text
    assert a.sessions[0].reason.endswith(
        text.removeprefix("PUBACK 0: the outlet refused this request; ")
    )


def test_a_verification_left_open_at_the_end_says_why() -> None:
    """A succeeded update with no firmware read after it is 'not verified' with a reason."""
    w = Wire()
    w.open("c1")
    w.offer("c1", 100001)  # 0-1
    w.request("c1", 100002, [2, 0])  # 2-3
    w.out("c1", 800001, cb=23, args=[2, 1], dt=1.0)  # 4
    a = analyze(w.events)
    (session,) = a.sessions
    assert (session.outcome, session.verified) == ("succeeded", None)
    assert "not verified: the capture ends before any read of the PM firmware" in session.reason


def test_no_text_says_a_outlet() -> None:
    w = Wire()
    w.open("c1")
    w.request("c1", 100002, [1, 0])  # 0-1
    w.out("c1", 900001, cb=22, args=[1, 10], dt=1.0)  # 2
    w.req("c1", 100003, 21, [1, 0], dt=1.0)  # 3: a retry
    a = analyze(w.events)
    (text,) = notes(a, 3, "ota-retry")
    assert text.startswith("an outlet update is already running")


def test_a_refusal_after_the_update_went_in_is_up_to_date_not_unexplained() -> None:
    """The last cb20 offered 0.0.2, but the outlet has run 0.0.2 since its update: a new
    request's PUBACK 0 is 'already up to date', not 'not for lack of an update'."""
    w = Wire()
    w.open("c1")
    w.offer("c1", 100001)  # 0-1
    w.request("c1", 100002, [1, 0])  # 2-3
    w.out("c1", 900001, cb=23, args=[1, 1], dt=1.0)  # 4
    w.close("c1", "outlet")
    w.open("c2", dt=5.0)
    info = {"IM": {"fw_rev": "0.0.2"}, "PM": {"fw_rev": "0.5.0"}}
    w.out("c2", 900002, cb=12, args=info, dt=0.2)  # 5: verified
    w.req("c2", 100003, 21, [1, 0], dt=1.0)  # 6
    w.out("c2", 100003, PUBACK=0, dt=0.02)  # 7
    a = analyze(w.events)
    assert a.sessions[0].verified is True
    (text,) = notes(a, 7, "puback-failure")
    assert "reported running since: already up to date" in text
    assert "not for lack of an update" not in text


def test_the_timeline_calls_an_ack_an_ack_and_the_sync_form_a_status() -> None:
    w = Wire()
    w.open("c1", "tcp")
    w.req("c1", 100002, 21, [2, 1])  # 0
    w.out("c1", 100002, cb=21, args=[2, 1], PUBACK=1, dt=0.02)  # 1: ack with a payload
    w.req("c1", 414883, 21, [1, 0], dt=1.0)  # 2
    w.close("c1", "outlet", dt=0.2)
    w.open("c2", "tcp", dt=1.0)
    w.out("c2", 414883, cb=21, args=[1, 1], dt=0.3)  # 3: revB sync status
    a = analyze(w.events)
    assert protocol.summary(a.messages[1]).startswith("OTA ack: ")
    assert protocol.summary(a.messages[3]).startswith("OTA status: ")
