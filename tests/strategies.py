"""Hypothesis strategies more than one test module draws from."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st


def json_scalars(max_text: int) -> st.SearchStrategy[Any]:
    """Scalars JSON spells as written (no NaN or infinity), integers beyond 64 bits too."""
    return (
        st.none()
        | st.booleans()
        | st.integers(-(10**20), 10**20)
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text(max_size=max_text)
    )
