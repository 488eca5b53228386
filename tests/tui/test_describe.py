"""How rows read at 80 columns: analysis verdicts as tags, close errors in a few words."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from rich.cells import cell_len

from proxy.core.model import Connection, Message, Row, Severity
from tests.tui.conftest import build_message
from tui import describe
from tui.describe import MIN_SUMMARY, Tag


def message(*codes: tuple[str, Severity]) -> Message:
    return build_message(
        7, t=1.0, side="outlet", kind="push", cb=23, name="OTA result", pid=123456,
        args=[1, 0], anns=codes, why="why",
    )  # fmt: skip


def test_notable_annotations_become_tags_worst_first_and_others_do_not() -> None:
    msg = message(
        ("fire-and-forget", "info"),
        ("spurious-ota-result", "info"),
        ("ota-stalled", "error"),
        ("invalid-json", "error"),  # the summary already says "invalid: ..."
    )
    assert describe.tags(msg) == [
        Tag("update stalled here", "stalled", True, "error"),
        Tag("spurious, not a failure", "not a failure", True, "info"),
    ]
    assert describe.tags(message(("fire-and-forget", "info"))) == []


SPURIOUS = [Tag("spurious, not a failure", "not a failure", True, "info")]
RESTART = Tag("outlet restarted", "restarted", False, "info")


def test_fit_prefers_the_whole_summary_and_cuts_the_tag_last() -> None:
    summary = "OTA result: outlet failed"  # 25 cells
    assert describe.fit(summary, SPURIOUS, 60) == (summary, " · spurious, not a failure")
    # too narrow for the long tag: the short one keeps the whole summary
    assert describe.fit(summary, SPURIOUS, 44) == (summary, " · not a failure")
    # too narrow for that too: the summary is cut, the tag stays whole
    assert describe.fit(summary, SPURIOUS, 35) == ("OTA result: outlet…", " · not a failure")
    # very narrow: some summary survives, the tag is cut
    text, tag = describe.fit(summary, SPURIOUS, 20)
    assert text == "OTA resul…" and tag.startswith(" · not") and tag.endswith("…")
    assert describe.fit(summary, [], 10) == ("OTA resul…", "")


def test_a_tag_that_need_not_show_gives_way_to_the_summary() -> None:
    summary = "OTA result: outlet succeeded, rebooting"  # 39 cells
    assert describe.fit(summary, [RESTART], 60) == (summary, " · outlet restarted")
    assert describe.fit(summary, [RESTART], 51) == (summary, " · restarted")
    assert describe.fit(summary, [RESTART], 44) == (summary, "")
    assert describe.fit(summary, [RESTART], 30) == (clip := describe.clip(summary, 30), "")
    assert clip.endswith("…")
    # next to a must, it goes first
    assert describe.fit(summary, [*SPURIOUS, RESTART], 56) == (summary, " · not a failure")


@given(
    st.text(max_size=80),
    st.lists(st.sampled_from(sorted(describe.ANNOTATION_TAGS)), max_size=3),
    st.integers(0, 120),
)
def test_fit_never_overflows_and_keeps_the_tag_whole_when_there_is_room(
    summary: str, codes: list[str], width: int
) -> None:
    tags = [Tag(*describe.ANNOTATION_TAGS[code], "info") for code in codes]
    text, tag = describe.fit(summary, tags, width)
    assert cell_len(text) + cell_len(tag) <= width
    short = "".join(describe.TAG_SEPARATOR + t.short for t in tags if t.must)
    if width >= MIN_SUMMARY + cell_len(short):
        assert cell_len(tag) >= cell_len(short) and not tag.endswith("…")
    if cell_len(summary) <= MIN_SUMMARY and width >= cell_len(summary) + cell_len(short):
        assert text == summary


def test_close_reasons_in_a_few_words() -> None:
    cases = {
        "outlet unreachable: [Errno 111] Connect call failed ('127.0.0.1', 41433)": (
            "outlet down: connection refused"
        ),
        "outlet unreachable: [Errno 113] Connect call failed ('10.0.0.5', 3333)": (
            "outlet down: no route to host"
        ),
        "outlet unreachable: TimeoutError": "outlet down: TimeoutError",
        "WebSocket closed with code 1006": "WebSocket 1006 (dropped, no close frame)",
        "WebSocket closed with code 4000": "WebSocket 4000",
        "[Errno 104] Connection reset by peer": "connection reset by peer",
    }
    for error, short in cases.items():
        assert describe.close_reason(error) == short
    assert cell_len(describe.close_reason("x" * 500)) == 60


def test_a_refused_connection_reads_short_and_a_normal_close_keeps_its_lifetime() -> None:
    error = "outlet unreachable: [Errno 111] Connect call failed ('127.0.0.1', 41433)"
    refused = Connection("c2", "tcp", "a:1", "o:2", 5.0, 5.0002, "proxy", error)
    row = Row(5.0002, "close", "c2", -1)
    assert describe.connection_text(row, refused) == (
        "closed by proxy · outlet down: connection refused"
    )
    normal = Connection("c1", "tcp", "a:1", "o:2", 1.0, 4.25, "outlet", None)
    assert describe.connection_text(Row(4.25, "close", "c1", -1), normal) == (
        "closed by outlet after 3.250s"
    )
