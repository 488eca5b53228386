"""Checks shared by the tests of several parts: written once so that they cannot drift."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from proxy.core.filter import FilterError
from proxy.core.rules import RuleError


def error_at[E: (FilterError, RuleError)](
    error: type[E], parse: Callable[[str], object], text: str, column: int, words: str
) -> E:
    """``parse(text)`` must raise ``error`` pointing at ``column`` with ``words`` in its
    message: how the filter and the rules tell a user where the mistake is. The error is
    returned for the checks only some callers make."""
    with pytest.raises(error) as info:
        parse(text)
    assert info.value.column == column, str(info.value)
    assert words in info.value.message, info.value.message
    return info.value
