"""Push copy detection alone (proxy.core.analysis.copies)."""

from __future__ import annotations

from proxy.core.analysis.copies import COPY_WINDOW, PushCopies
from tests.unit.analysis_parts import Messages


def closed(_: int) -> bool:
    return False


def test_the_same_push_on_another_connection_a_moment_later_is_a_copy() -> None:
    copies, m = PushCopies(60.0), Messages()
    first = m.add(10.0, "c1", "outlet", 500, 22, [1, 40])
    assert copies.original_of("10.0.0.5", first, m, closed) is None
    again = m.add(10.0 + COPY_WINDOW, "c2", "outlet", 500, 22, [1, 40])
    assert copies.original_of("10.0.0.5", again, m, closed) is first


def test_the_same_bytes_on_the_same_connection_or_another_outlet_are_news() -> None:
    copies, m = PushCopies(60.0), Messages()
    first = m.add(10.0, "c1", "outlet", 500, 22, [1, 40])
    copies.original_of("10.0.0.5", first, m, closed)
    repeat = m.add(10.5, "c1", "outlet", 500, 22, [1, 40])
    assert copies.original_of("10.0.0.5", repeat, m, closed) is None
    elsewhere = m.add(10.6, "c3", "outlet", 500, 22, [1, 40])
    assert copies.original_of("10.0.0.9", elsewhere, m, closed) is None
    # the repeat is now the original a copy is compared with
    copy = m.add(11.0, "c2", "outlet", 500, 22, [1, 40])
    assert copies.original_of("10.0.0.5", copy, m, closed) is repeat


def test_a_late_copy_counts_only_while_its_update_is_open() -> None:
    copies, m = PushCopies(60.0), Messages()
    first = m.add(10.0, "c1", "outlet", 501, 23, [1, 1])
    copies.original_of("o", first, m, closed)
    late = m.add(10.0 + COPY_WINDOW + 0.1, "c2", "outlet", 501, 23, [1, 1])
    asked: list[int] = []

    def open_update(msg_id: int) -> bool:
        asked.append(msg_id)
        return True

    assert copies.original_of("o", late, m, open_update) is first
    assert asked == [0]
    later = m.add(10.0 + COPY_WINDOW + 0.2, "c3", "outlet", 501, 23, [1, 1])
    assert copies.original_of("o", later, m, closed) is None


def test_pushes_older_than_a_stall_window_are_forgotten() -> None:
    copies, m = PushCopies(stall_window=5.0), Messages()
    for i in range(10):
        copies.original_of("o", m.add(float(i * 3), "c1", "outlet", i, 22, [1, i]), m, closed)
    # at t=27 only the pushes of the last 5 s (t=24, 27) can still be matched
    assert sorted(t for _, t in copies.recent.values()) == [24.0, 27.0]
