"""Errors a user can fix, shown as one line without a traceback."""

from __future__ import annotations

import errno


class UserError(Exception):
    """A mistake the user can fix (bad flag value, missing or wrong file, ...)."""


def listen_failure(exc: OSError) -> str:
    """Why a listener could not bind, in the words users search for."""
    if exc.errno == errno.EADDRINUSE:
        return "address already in use"
    return exc.strerror or str(exc)
