"""Every time formatting is total (issue 8 item 7): no float makes one raise.

Readers refuse times outside 0 <= t < T_MAX, but the formatters must not rely on it:
live events, analysis arithmetic (t + stall window) and the TUI's deltas make times too.
"""

from __future__ import annotations

import re
import time

from hypothesis import given
from hypothesis import strategies as st

from proxy.core import report
from proxy.core.analysis import Analysis, fmt_t
from proxy.core.events import T_MAX, clock_text, column_label, seconds_text, time_label
from tui.describe import TIME_MODES, time_text

any_float = st.floats(allow_nan=True, allow_infinity=True, width=64)
CLOCK = re.compile(r"\d\d:\d\d:\d\d\.\d\d\d")
# what a time that is not shown as a clock looks like: a number, short, or nan/inf
SECONDS = re.compile(r"-?(\d{1,12}\.\d{3}|\d(\.\d{1,3})?e[+-]\d+|nan|inf)")


@given(any_float)
def test_every_formatter_takes_any_float(t: float) -> None:
    analysis = Analysis()
    texts = [clock_text(t), seconds_text(t), time_label(t), column_label(t), fmt_t(t)]
    texts.append(report.t_label(analysis, t))
    texts += [time_text(mode, t, 0.0, None) for mode in TIME_MODES]
    texts += [time_text(mode, 1.0, t, t) for mode in TIME_MODES]
    for text in texts:
        assert isinstance(text, str) and 0 < len(text) <= 24, (t, text)
    wall = 1e9 < t < T_MAX
    assert (CLOCK.fullmatch(time_label(t)) is not None) == wall
    if not wall:
        assert time_label(t).startswith("t=") and time_label(t).endswith("s")
        assert SECONDS.fullmatch(time_label(t)[2:-1]), time_label(t)
    if not 0 <= t < T_MAX:
        assert SECONDS.fullmatch(clock_text(t)), clock_text(t)


@given(st.floats(0.0, T_MAX, exclude_max=True))
def test_a_time_in_range_is_the_local_clock_to_the_millisecond(t: float) -> None:
    whole = int(t)
    expected = time.strftime("%H:%M:%S", time.localtime(whole)) + f".{int((t - whole) * 1000):03d}"
    assert clock_text(t) == expected
    assert time_text("absolute", t, 0.0, None) == expected


def test_the_absurd_times_of_the_issue_read_as_numbers() -> None:
    assert time_label(1e20) == "t=1e+20s"
    assert time_label(1.99e139) == "t=1.99e+139s"
    assert column_label(1.99e139) == "1.99e+139"
    assert column_label(float("nan")) == "      nan"
    assert column_label(12.5) == "   12.500"
    assert time_label(12.5) == "t=12.500s"
