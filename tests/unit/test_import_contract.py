"""The headless core must not import mitmproxy or Textual (DESIGN 1.5)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PROXY = Path(__file__).resolve().parents[2] / "proxy"
CORE_MODULES = [
    "errors",
    "events",
    "framing",
    "protocol",
    "model",
    "analysis",
    "trace",
    "capture",
    "sources",
    "records",
    "report",
    "redact",
]
FORBIDDEN = ("mitmproxy", "textual")


@pytest.mark.parametrize("name", CORE_MODULES)
def test_core_module_source_has_no_forbidden_import(name: str) -> None:
    path = PROXY / f"{name}.py"
    assert path.exists(), f"core module {path} is missing"
    tree = ast.parse(path.read_text(), filename=str(path))
    imported: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.append(node.module)
    bad = [m for m in imported if m.split(".")[0] in FORBIDDEN]
    assert not bad, f"proxy/{name}.py imports {bad}"


def test_importing_the_core_loads_neither_mitmproxy_nor_textual() -> None:
    modules = ", ".join(f"proxy.{n}" for n in CORE_MODULES)
    code = (
        f"import sys, importlib\n"
        f"for m in '{modules}'.split(', '): importlib.import_module(m)\n"
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r})\n"
        f"print(','.join(bad))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "", f"importing the core pulled in: {out}"
