"""The scenario suite: each trace in tests/scenarios with its analysis, written by hand.

The expectations below were worked out from protocol/README section 4 by reading each
trace (tests/scenarios/build_traces.py builds them; message numbers are in its
comments), not by running the analysis.

Over 500 lines because EXPECTED holds one hand-worked entry per scenario (31 of them)
beside the checks that read it; each entry sits next to the others it is compared with.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from proxy.core.analysis import Analysis, analyze
from proxy.store.recording import load_events

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"

# The annotation codes this suite checks exactly (DESIGN 4.4). Others (e.g. bad-args)
# may appear and are not checked here.
CHECKED_CODES = {
    "invalid-json",
    "unknown-callback",
    "packetid-format",
    "puback-failure",
    "unanswered-request",
    "fire-and-forget",
    "spurious-ota-result",
    "www-phase-complete",
    "ota-restart",
    "ota-stalled",
    "fw-mismatch",
    "secret",
    "ota-retry",
    "ota-failed",
    "app-gave-up",
    "refusal-ignored",
}


@dataclass
class Expected:
    links: set[tuple[int, int, str]]
    sessions: list[dict[str, Any]] = field(default_factory=list)
    annotations: dict[int, set[str]] = field(default_factory=dict)
    kinds: dict[int, str] = field(default_factory=dict)
    # (message id, annotation code, words its text must hold, words it must not)
    texts: list[tuple[int, str, list[str], list[str]]] = field(default_factory=list)
    # (session index, words its reason must hold)
    reasons: list[tuple[int, list[str]]] = field(default_factory=list)
    # (from, to, words the link's reason must hold, words it must not)
    link_texts: list[tuple[int, int, list[str], list[str]]] = field(default_factory=list)


def progress_links(src: int, ids: range | list[int]) -> set[tuple[int, int, str]]:
    return {(src, i, "ota-progress") for i in ids}


def session(
    request: int | None,
    target: str | None,
    outcome: str,
    messages: Iterable[int] | None = None,
    **facts: Any,
) -> dict[str, Any]:
    """An expected OTA session, by the keys it is checked on: ``target`` and ``messages``
    only where not None; ``facts`` are further keys (method, progress_types, ...)."""
    want: dict[str, Any] = {"request": request, "outcome": outcome, **facts}
    if target is not None:
        want["target"] = target
    if messages is not None:
        want["messages"] = list(messages)
    return want


def firmware(
    before: str | None, expected: str | None, after: str | None, *, verified: bool | None
) -> dict[str, Any]:
    """The firmware facts of a session: before, expected, read after, and the verdict."""
    return {"fw_before": before, "fw_expected": expected, "fw_after": after, "verified": verified}


EXPECTED: dict[str, Expected] = {
    "reva_outlet_ws": Expected(
        links={(0, 1, "response"), (2, 3, "response"), (4, 5, "ota-ack"), (4, 6, "ota-result")}
        | progress_links(4, range(7, 12))
        | {(4, 12, "ota-result")}
        | progress_links(4, range(13, 18))
        | {(4, 18, "ota-result"), (4, 19, "ota-verify"), (20, 21, "response")},
        sessions=[
            session(4, "outlet", "succeeded", range(4, 20), method="wifi")
            | firmware("0.0.1", "0.0.2", "0.0.2", verified=True)
            | {"progress_types": [3] * 5 + [1] * 5}
        ],
        annotations={
            6: {"spurious-ota-result"},
            12: {"www-phase-complete"},
            18: {"ota-restart"},
        },
        kinds={1: "response", 5: "response", 6: "push", 19: "push", 21: "response"},
    ),
    "revb_outlet_tcp": Expected(
        links={(0, 1, "response"), (2, 3, "ota-sync")}
        | progress_links(2, range(4, 7))
        | {(2, 7, "ota-result")}
        | progress_links(2, range(8, 11))
        | {(2, 11, "ota-result"), (2, 12, "ota-verify")},
        sessions=[
            session(2, "outlet", "succeeded", range(2, 13), method="wifi")
            | firmware("1.2.0", "1.3.0", "1.3.0", verified=True)
            | {"progress_types": [3, 3, 3, 1, 1, 1]}
        ],
        annotations={
            2: {"fire-and-forget", "ota-restart"},
            7: {"www-phase-complete"},
            11: {"ota-restart"},
        },
        kinds={3: "push"},
    ),
    "deco_wifi": Expected(
        links={(0, 1, "response"), (2, 3, "ota-ack"), (2, 4, "ota-result")}
        | progress_links(2, range(5, 8))
        | {(2, 8, "ota-result"), (9, 10, "response"), (2, 11, "ota-verify")},
        sessions=[
            session(2, "deco", "succeeded", [2, 3, 4, 5, 6, 7, 8, 11], method="wifi")
            | firmware("0.5.0", "0.5.1", "0.5.1", verified=True)
        ],
        annotations={4: {"spurious-ota-result"}},
    ),
    "deco_via_outlet_mismatch": Expected(
        links={(0, 1, "response"), (2, 3, "ota-ack")}
        | progress_links(2, [4, 5])
        | {(2, 6, "ota-result"), (7, 8, "response"), (2, 8, "ota-verify")},
        sessions=[
            session(2, "deco", "succeeded", method="via-outlet")
            | firmware("0.5.0", "0.6.0", "0.5.0", verified=False)
        ],
        annotations={8: {"fw-mismatch"}},
    ),
    "refused": Expected(
        links={(0, 1, "response"), (2, 3, "ota-ack")},
        sessions=[
            session(2, "outlet", "refused", [2, 3])
            | firmware("0.0.2", "0.0.2", None, verified=None)
        ],
        annotations={3: {"puback-failure"}},
    ),
    "failed_main_phase": Expected(
        links={(0, 1, "ota-ack"), (0, 2, "ota-result")}
        | progress_links(0, [3, 4])
        | {(0, 5, "ota-result")},
        sessions=[session(0, None, "failed", [0, 1, 2, 3, 4, 5])],
        annotations={2: {"spurious-ota-result"}, 5: {"ota-failed"}},
    ),
    "failed_revb_sync": Expected(
        links={(0, 1, "ota-sync")},
        sessions=[session(0, "outlet", "failed", [0, 1])],
        annotations={0: {"fire-and-forget", "ota-restart"}, 1: {"ota-failed"}},
    ),
    "stalled": Expected(
        links={(0, 1, "ota-ack")} | progress_links(0, [2, 3]),
        sessions=[session(0, None, "stalled", [0, 1, 2, 3])],
        annotations={3: {"ota-stalled"}},
    ),
    "in_progress": Expected(
        links={(0, 1, "ota-ack"), (0, 2, "ota-progress")},
        sessions=[session(0, None, "in-progress", [0, 1, 2])],
    ),
    "orphan_progress": Expected(
        links=set(),
        sessions=[
            session(None, "outlet", "succeeded", [0, 1, 2, 3, 4], method=None)
            | firmware(None, None, "0.0.2", verified=None)
        ],
        annotations={3: {"ota-restart"}},
    ),
    "concurrent_outlet_and_deco": Expected(
        links={
            (0, 1, "response"),
            (2, 3, "ota-ack"),
            (4, 5, "ota-ack"),
            (2, 6, "ota-progress"),
            (4, 7, "ota-progress"),
            (2, 8, "ota-progress"),
            (2, 9, "ota-result"),
            (4, 10, "ota-progress"),
            (2, 11, "ota-verify"),
            (4, 12, "ota-result"),
            (4, 13, "ota-verify"),
        },
        sessions=[
            session(2, "deco", "succeeded", [2, 3, 6, 8, 9, 11], method="via-outlet")
            | firmware("0.5.0", "0.5.1", "0.5.1", verified=True),
            session(4, "outlet", "succeeded", [4, 5, 7, 10, 12, 13], method="wifi")
            | firmware("0.0.1", "0.0.2", "0.0.2", verified=True),
        ],
        annotations={12: {"ota-restart"}},
    ),
    "chatter": Expected(
        links={(1, 2, "response"), (5, 6, "response"), (9, 10, "response")},
        annotations={
            8: {"unknown-callback", "unanswered-request"},
            9: {"packetid-format"},
            11: {"fire-and-forget"},
        },
        kinds={0: "push", 2: "response", 3: "push", 10: "response"},
    ),
    "two_apps": Expected(
        links={(1, 2, "response"), (0, 3, "response"), (6, 7, "response")},
        annotations={7: {"secret"}},
        kinds={2: "response", 3: "response", 4: "push", 5: "push"},
    ),
    "tcp_framing_abuse": Expected(
        links={(0, 2, "response")},
        annotations={
            1: {"invalid-json"},
            3: {"invalid-json"},
            4: {"unanswered-request"},
            5: {"unanswered-request"},
            # the invalid UTF-8 is garbage up to the outlet's next '{', which comes after
            # the app's requests 4 and 5
            6: {"invalid-json"},
            7: {"invalid-json"},
        },
        kinds={1: "invalid", 2: "response", 3: "invalid", 6: "invalid", 7: "invalid"},
    ),
    "two_apps_one_update": Expected(
        # the outlet pushes every OTA message to both apps; the copies belong to the one
        # update without counting its progress twice
        links={(0, 1, "response"), (2, 3, "ota-ack"), (2, 4, "ota-result"), (2, 5, "ota-result")}
        | progress_links(2, range(6, 12))
        | {(2, 12, "ota-result"), (2, 13, "ota-result"), (2, 14, "ota-verify")},
        sessions=[
            session(2, "outlet", "succeeded", range(2, 15))
            | firmware("0.0.1", "0.0.2", "0.0.2", verified=True)
            | {"progress_types": [1, 1, 1]}
        ],
        annotations={
            4: {"spurious-ota-result"},
            5: {"spurious-ota-result"},
            12: {"ota-restart"},
            13: {"ota-restart"},
        },
        kinds={5: "push", 13: "push"},
    ),
    "resent_request": Expected(
        links={(0, 1, "response"), (3, 4, "ota-ack"), (2, 5, "ota-progress")}
        | {(2, 6, "ota-result"), (2, 7, "ota-verify")},
        sessions=[session(2, None, "succeeded", [2, 3, 4, 5, 6, 7], verified=True)],
        annotations={
            2: {"fire-and-forget"},
            3: {"ota-retry"},
            6: {"ota-restart"},
        },
    ),
    "second_app_refused": Expected(
        links={(0, 1, "ota-ack"), (0, 2, "ota-progress"), (3, 4, "ota-ack")}
        | {(0, 5, "ota-progress"), (0, 6, "ota-result")},
        sessions=[session(0, None, "succeeded", range(7))],
        annotations={
            3: {"ota-retry"},
            4: {"puback-failure"},
        },
    ),
    "midcapture_failure": Expected(
        links=set(),
        sessions=[session(None, "outlet", "failed", [0])],
        annotations={0: {"ota-failed"}},
    ),
    "midcapture_spurious_result": Expected(
        links=set(),
        sessions=[session(None, None, "succeeded", [0, 1, 2, 3]) | {"progress_types": [1, 1]}],
        annotations={0: {"spurious-ota-result"}},
    ),
    "deco_early_device_info": Expected(
        links={(0, 1, "response"), (2, 3, "ota-ack"), (2, 4, "ota-progress")}
        | {(2, 5, "ota-result"), (6, 7, "response"), (8, 9, "response"), (10, 11, "response")}
        | {(2, 11, "ota-verify")},
        sessions=[
            session(
                2,
                "deco",
                "succeeded",
                [2, 3, 4, 5, 11],
                method="via-outlet",
                fw_before="0.5.0",
                fw_after="0.5.1",
                verified=True,
            )
        ],
    ),
    "deco_slow_to_report": Expected(
        links={(0, 1, "response"), (2, 3, "ota-ack"), (2, 4, "ota-result")}
        | {(5, 6, "response"), (7, 8, "response"), (2, 8, "ota-verify")},
        sessions=[session(2, "deco", "succeeded", [2, 3, 4, 8], fw_after="0.5.1", verified=True)],
    ),
    "proxy_shutdown_mid_update": Expected(
        links={(0, 1, "ota-ack"), (0, 2, "ota-progress")},
        sessions=[session(0, None, "in-progress", [0, 1, 2])],
    ),
    "late_copy_of_result": Expected(
        links={(0, 1, "response"), (2, 3, "ota-ack"), (2, 4, "ota-progress")}
        | {(2, 5, "ota-progress"), (2, 6, "ota-result"), (2, 7, "ota-result")}
        | {(2, 8, "ota-verify")},
        sessions=[
            session(2, None, "succeeded", [2, 3, 4, 5, 6, 7, 8], verified=True)
            | {"progress_types": [1]}
        ],
        annotations={6: {"ota-restart"}, 7: {"ota-restart"}},
    ),
    "connection_outlives_a_close": Expected(
        links={(0, 1, "response"), (2, 3, "ota-ack"), (2, 4, "ota-progress")}
        | {(2, 5, "ota-result"), (6, 7, "response"), (2, 8, "ota-verify")},
        sessions=[session(2, None, "succeeded", [2, 3, 4, 5, 8], fw_after="0.0.2", verified=True)],
        annotations={5: {"ota-restart"}},
    ),
    "refused_retry": Expected(
        links={(0, 1, "response"), (3, 4, "ota-ack"), (5, 6, "response")},
        sessions=[session(2, None, "refused", [2, 3, 4])],
        annotations={
            2: {"fire-and-forget"},
            3: {"ota-retry"},
            4: {"puback-failure", "refusal-ignored"},
        },
    ),
    # issue 8 item 13: the refused retry during the deco's reboot is its own session; the
    # first update is still verified by the cb12 that shows PM back with 0.5.1
    "deco_retry_during_reboot": Expected(
        links={(0, 1, "response"), (2, 3, "ota-ack"), (2, 4, "ota-result")}
        | progress_links(2, range(5, 8))
        | {(2, 8, "ota-result"), (9, 10, "response"), (11, 12, "ota-ack")}
        | {(2, 13, "ota-verify")},
        sessions=[
            session(2, "deco", "succeeded", [2, 3, 4, 5, 6, 7, 8, 13], method="wifi")
            | firmware("0.5.0", "0.5.1", "0.5.1", verified=True),
            session(11, "deco", "refused", [11, 12], method="wifi")
            | firmware("0.5.0", "0.5.1", None, verified=None),
        ],
        annotations={4: {"spurious-ota-result"}, 12: {"puback-failure"}},
        texts=[
            (
                12,
                "puback-failure",
                ["deco target", "succeeded at", "seen rebooting", "does not undo", "PM 0.5.1"],
                ["already up to date", "outlet target"],
            )
        ],
        reasons=[(0, ["matches the expected 0.5.1"]), (1, ["PUBACK 0", "seen rebooting"])],
    ),
    # item 14: a reply with the request's packetID and a PUBACK is the ack, payload or not
    "ack_with_payload": Expected(
        links={(0, 1, "response"), (2, 3, "ota-ack"), (2, 4, "ota-result")}
        | progress_links(2, range(5, 8))
        | {(2, 8, "ota-result"), (2, 9, "ota-verify")},
        sessions=[
            session(2, "outlet", "succeeded", range(2, 10), method="wifi")
            | firmware("0.0.1", "0.0.2", "0.0.2", verified=True)
            | {"progress_types": [1, 1, 1]}
        ],
        annotations={4: {"spurious-ota-result"}, 8: {"ota-restart"}},
        kinds={3: "response"},
        link_texts=[(2, 3, ["PUBACK 1", "payload [1,0]", "acknowledgement"], [])],
    ),
    # item 15: no ack for a deco update says so for the deco (revision unknown on this
    # capture); deco progress is the deco's firmware, not the "main firmware"
    "deco_no_ack": Expected(
        links={(0, 1, "response"), (2, 3, "ota-result")}
        | progress_links(2, range(4, 7))
        | {(2, 7, "ota-result"), (2, 9, "ota-verify")},
        sessions=[
            session(2, "deco", "succeeded", [2, 3, 4, 5, 6, 7, 9], method="via-outlet")
            | firmware("0.5.0", "0.5.1", "0.5.1", verified=True)
        ],
        annotations={2: {"fire-and-forget"}, 3: {"spurious-ota-result"}},
        texts=[
            (
                2,
                "fire-and-forget",
                ["within 30 s", "deco update", "revision unknown"],
                ["revB outlet updates restart", "never sends it"],
            )
        ],
        link_texts=[(2, 4, ["deco firmware 0 %"], ["main firmware"])],
    ),
    # item 16: 72 s without OTA news (the WWW phase stopped at 40 %), then the app closes
    "app_gave_up_close": Expected(
        links={(0, 1, "response"), (2, 3, "ota-ack"), (2, 4, "ota-result")}
        | progress_links(2, [5, 6]),
        sessions=[session(2, None, "stalled", [2, 3, 4, 5, 6]) | {"progress_types": [3, 3]}],
        annotations={4: {"spurious-ota-result"}, 6: {"ota-stalled", "app-gave-up"}},
        texts=[(6, "app-gave-up", ["closed connection c1", "72.0 s", "60 s"], [])],
        reasons=[(0, ["stall window", "the app gave up"])],
    ),
    # item 16 with revB: the app's new cb21 75 s after the last progress is its giving up;
    # both requests are unacknowledged because the outlet restarts at once (revB)
    "app_gave_up_retry": Expected(
        links={(0, 1, "response"), (2, 3, "ota-sync")} | progress_links(2, [4, 5]),
        sessions=[
            session(2, "outlet", "stalled", [2, 3, 4, 5]),
            session(13, "outlet", "in-progress", [13]),
        ],
        annotations={
            2: {"fire-and-forget", "ota-restart"},
            5: {"ota-stalled"},
            13: {"app-gave-up", "fire-and-forget", "ota-restart"},
        },
        texts=[
            (2, "fire-and-forget", ["closed the TCP connection 200 ms", "revB"], []),
            (13, "app-gave-up", ["asks again", "75.0 s"], []),
            (13, "fire-and-forget", ["revB"], []),
        ],
        reasons=[(0, ["the app gave up", "superseded"])],
    ),
    # items 15 and 16: PUBACK 0 although cb20 offered 0.0.2; the app polls on for 81 s
    "refusal_ignored": Expected(
        links={(0, 1, "response"), (2, 3, "ota-ack")}
        | {(i, i + 1, "response") for i in (4, 6, 8, 10)},
        sessions=[session(2, "outlet", "refused", [2, 3], fw_before="0.0.1", fw_expected="0.0.2")],
        annotations={3: {"puback-failure", "refusal-ignored", "app-gave-up"}},
        texts=[
            (3, "puback-failure", ["offered IM 0.0.2", "outlet revision A"], ["up to date"]),
            (3, "refusal-ignored", ["connection c1 is still open", "cb12 ×2"], []),
            (3, "app-gave-up", ["closed connection c1", "ignores PUBACK 0"], []),
        ],
        reasons=[(0, ["offered IM 0.0.2", "the app gave up"])],
    ),
    # interventions (issue 10): the outlet's truth in outcome, the app's in app_outcome
    "rule_refusal": Expected(
        links={(0, 1, "response"), (2, 3, "ota-ack")},
        sessions=[
            {
                "request": 2,
                "outcome": "refused",
                "app_outcome": "refused",
                "messages": [2, 3],
                "fw_before": "0.0.1",
                "fw_expected": "0.0.2",
            }
        ],
        annotations={3: {"puback-failure"}},
    ),
    "rule_success_to_failure": Expected(
        links={(0, 1, "ota-ack"), *progress_links(0, range(2, 5)), (0, 5, "ota-result")},
        sessions=[{"request": 0, "outcome": "succeeded", "app_outcome": "failed"}],
    ),
    "rule_sync_lost": Expected(
        links={(0, 1, "ota-sync"), *progress_links(0, [2, 3]), (0, 4, "ota-result")},
        sessions=[{"request": 0, "outcome": "succeeded", "app_outcome": "succeeded"}],
        annotations={0: {"fire-and-forget", "ota-restart"}},
    ),
    "rule_progress_stops": Expected(
        links={(0, 1, "ota-ack"), *progress_links(0, range(2, 7)), (0, 7, "ota-result")},
        sessions=[{"request": 0, "outcome": "succeeded", "app_outcome": "succeeded"}],
    ),
}


def load(name: str) -> list[Any]:
    return list(load_events(SCENARIOS / f"{name}.jsonl").events)


def test_every_scenario_file_has_expectations() -> None:
    files = {p.stem for p in SCENARIOS.glob("*.jsonl")}
    assert files == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_scenario_analysis(name: str) -> None:
    expected = EXPECTED[name]
    doc = analyze(load(name)).to_json()

    links = {(link["from"], link["to"], link["relation"]) for link in doc["links"]}
    assert links == expected.links

    for link in doc["links"]:
        assert link["from"] < link["to"], "links go from the earlier message to the later"
        assert len(link["reason"]) > 20, "every link explains itself"

    assert len(doc["ota"]) == len(expected.sessions)
    for got, want in zip(doc["ota"], expected.sessions, strict=True):
        want = dict(want)
        types = want.pop("progress_types", None)
        for key, value in want.items():
            assert got[key] == value, f"session {key}: {got[key]!r} != {value!r}"
        if types is not None:
            assert [p[1] for p in got["progress"]] == types
        assert got["reason"], "every session says why it has its outcome"

    codes = {
        m["id"]: {a["code"] for a in m["annotations"]} & CHECKED_CODES for m in doc["messages"]
    }
    got_annotations = {i: c for i, c in codes.items() if c}
    assert got_annotations == expected.annotations

    for msg_id, kind in expected.kinds.items():
        assert doc["messages"][msg_id]["kind"] == kind, f"message {msg_id}"
    for msg_id, code, words, absent in expected.texts:
        (text,) = [a["text"] for a in doc["messages"][msg_id]["annotations"] if a["code"] == code]
        for word in words:
            assert word in text, f"#{msg_id} {code}: {word!r} not in {text!r}"
        for word in absent:
            assert word not in text, f"#{msg_id} {code}: {word!r} in {text!r}"
    for index, words in expected.reasons:
        reason = doc["ota"][index]["reason"]
        for word in words:
            assert word in reason, f"session {index}: {word!r} not in {reason!r}"
    for src, dst, words, absent in expected.link_texts:
        (reason,) = [
            link["reason"] for link in doc["links"] if (link["from"], link["to"]) == (src, dst)
        ]
        for word in words:
            assert word in reason, f"link {src}->{dst}: {word!r} not in {reason!r}"
        for word in absent:
            assert word not in reason, f"link {src}->{dst}: {word!r} in {reason!r}"
    for m in doc["messages"]:
        if m["kind"] == "invalid":
            assert m["callback"] is None
        for a in m["annotations"]:
            assert a["severity"] in ("info", "warning", "error") and a["text"]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_feeding_live_with_clock_ticks_gives_the_same_result(name: str) -> None:
    """The live proxy feeds events one by one and ticks the clock in between."""
    events = load(name)
    batch = analyze(events).to_json()
    live = Analysis()
    for i, event in enumerate(events):
        live.feed(event)
        if i + 1 < len(events):
            gap = events[i + 1].t - event.t
            for frac in (0.25, 0.5, 0.999):
                live.advance(event.t + gap * frac)
    live.finish()
    assert json.dumps(live.to_json(), sort_keys=True) == json.dumps(batch, sort_keys=True)


def test_stall_window_is_configurable() -> None:
    events = load("stalled")
    assert analyze(events, stall_window=120).to_json()["ota"][0]["outcome"] == "in-progress"
    assert analyze(events, stall_window=5).to_json()["ota"][0]["outcome"] == "stalled"


def test_response_links_respect_the_reply_timeout() -> None:
    events = load("chatter")
    doc = analyze(events, reply_timeout=100).to_json()
    # with a long timeout the unknown callback is still unanswered at the end of the capture
    assert "unanswered-request" in {a["code"] for a in doc["messages"][8]["annotations"]}
    # the restart request (fire-and-forget) is never "unanswered"
    assert "unanswered-request" not in {a["code"] for a in doc["messages"][11]["annotations"]}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_ota_texts_hold_for_the_case_at_hand(name: str) -> None:
    """Issue 8 item 15, over every scenario: no "a outlet"; deco progress is never the
    "main firmware"; a cb21 that was acknowledged is not called fire-and-forget, and one
    that was not says what is known of its target and the outlet's revision."""
    doc = analyze(load(name)).to_json()
    texts = [a["text"] for m in doc["messages"] for a in m["annotations"]]
    texts += [link["reason"] for link in doc["links"]] + [s["reason"] for s in doc["ota"]]
    assert not [t for t in texts if "a outlet" in t]
    acked = {link["from"] for link in doc["links"] if link["relation"] == "ota-ack"}
    for session in doc["ota"]:
        if session["target"] == "deco":
            for link in doc["links"]:
                if link["from"] == session["request"]:
                    assert "main firmware" not in link["reason"]
    for m in doc["messages"]:
        if m["from"] != "app" or m["callback"] != 21:
            continue
        notes = [a["text"] for a in m["annotations"] if a["code"] == "fire-and-forget"]
        if m["id"] in acked:
            assert notes == []
        for text in notes:
            target = "deco update" if m["args"][0] == 2 else "outlet"
            assert target in text, text
            assert any(rev in text for rev in ("revision", "revA", "revB")), text


@pytest.mark.parametrize("window", [30.0, 90.0])
@pytest.mark.parametrize(
    "name", ["app_gave_up_close", "app_gave_up_retry", "refusal_ignored", "refused_retry"]
)
def test_live_equals_batch_for_any_stall_window(name: str, window: float) -> None:
    """The app's reactions are judged against the configured stall window, live as in batch."""
    events = load(name)
    batch = analyze(events, stall_window=window).to_json()
    live = Analysis(stall_window=window)
    for i, event in enumerate(events):
        live.feed(event)
        if i + 1 < len(events):
            live.advance(event.t + (events[i + 1].t - event.t) * 0.999)
    live.finish()
    assert json.dumps(live.to_json(), sort_keys=True) == json.dumps(batch, sort_keys=True)
