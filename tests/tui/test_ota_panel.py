"""The OTA panel's per-phase progress names what each phase updates (issue 8 item 15)."""

from __future__ import annotations

from proxy.core.model import OtaSession
from tui.widgets.ota import phases, session_prompt


def test_deco_progress_is_the_decos_firmware_not_the_main_one() -> None:
    deco = OtaSession(target="deco", progress=[(1.0, 2, 50), (2.0, 2, 100)])
    assert phases(deco) == [("deco", [50, 100])]
    assert "main" not in session_prompt(1, deco, 60).plain


def test_outlet_progress_keeps_its_www_and_main_phases() -> None:
    outlet = OtaSession(target="outlet", progress=[(1.0, 3, 100), (2.0, 1, 40)])
    assert phases(outlet) == [("www", [100]), ("main", [40])]
