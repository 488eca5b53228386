"""Entry point for stock mitmproxy: ``mitmdump -s proxy/addon.py`` (and mitmweb).

The addon lives in :mod:`proxy.mitm.addon`; this file keeps the documented script path.
mitmproxy loads scripts outside ``sys.modules``, so it finds the package itself when
invisproxy is not installed in mitmproxy's environment.
"""

from __future__ import annotations

import sys
from pathlib import Path

try:
    import proxy  # noqa: F401
except ImportError:  # loaded by a mitmproxy that does not have invisproxy installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from proxy.mitm.addon import addons

__all__ = ["addons"]
