"""Errors a user can fix, shown as one line without a traceback."""

from __future__ import annotations


class UserError(Exception):
    """A mistake the user can fix (bad flag value, missing or wrong file, ...)."""
