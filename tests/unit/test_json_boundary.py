"""The relay's JSON boundary tracker (in the core framer), which decides when a TCP
injection is safe."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from proxy.core.framing import JsonBoundary

# json.dumps turns these into escapes (\\ \" \n) and bracket look-alikes inside strings
TRICKY = st.sampled_from(list('x\\"{}[]ü\n'))
VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(TRICKY, max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(TRICKY), inner),
    max_leaves=8,
)


@given(
    st.lists(st.dictionaries(st.text(TRICKY, max_size=4), VALUES), min_size=1, max_size=8),
    st.lists(st.integers(1, 9), min_size=1),
    st.sampled_from(["", "\n", " ", "\r\n"]),
)
def test_at_boundary_exactly_between_objects(
    objects: list[dict[str, object]], cuts: list[int], sep: str
) -> None:
    parts = [json.dumps(o, ensure_ascii=False).encode() + sep.encode() for o in objects]
    stream = b"".join(parts)
    ends, pos = set(), 0
    for part in parts:
        pos += len(part)
        ends |= {pos, pos - len(sep.encode())}
    tracker, pos, i = JsonBoundary(), 0, 0
    while pos < len(stream):
        chunk = stream[pos : pos + cuts[i % len(cuts)]]
        i += 1
        pos += len(chunk)
        tracker.feed(chunk)
        inside_sep = any(end - len(sep.encode()) < pos < end for end in ends)
        if not inside_sep:
            assert tracker.at_boundary == (pos in ends), (stream, pos)


def test_stray_closers_in_garbage_do_not_wedge_it() -> None:
    tracker = JsonBoundary()
    seen = []
    for chunk in (b"]]}} garbage ", b'{"a": "}', b'"}'):
        tracker.feed(chunk)
        seen.append(tracker.at_boundary)
    assert seen == [True, False, True]
