"""The headless layers must not import mitmproxy, Textual, websockets or the TUI.

import-linter checks the whole layering in CI (``lint-imports``, contracts in
pyproject.toml); this test checks the same rule for the core and the store from the
files on disk (every module found, so a new one cannot be forgotten) and by importing
them in a fresh interpreter, which also catches imports made at run time.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PROXY = Path(__file__).resolve().parents[2] / "proxy"
HEADLESS = sorted(path for package in ("core", "store") for path in (PROXY / package).rglob("*.py"))
FORBIDDEN = ("mitmproxy", "textual", "websockets", "tui")


def module_name(path: Path) -> str:
    parts = path.relative_to(PROXY.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_the_headless_layers_are_found() -> None:
    names = {module_name(p) for p in HEADLESS}
    assert {"proxy.core.framing", "proxy.core.analysis", "proxy.store.capture"} <= names


@pytest.mark.parametrize("path", HEADLESS, ids=module_name)
def test_headless_module_source_has_no_forbidden_import(path: Path) -> None:
    tree = ast.parse(path.read_text(), filename=str(path))
    imported: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.append(node.module)
    bad = [m for m in imported if m.split(".")[0] in FORBIDDEN]
    assert not bad, f"{module_name(path)} imports {bad}"


def test_importing_the_headless_layers_loads_none_of_them() -> None:
    modules = ",".join(module_name(p) for p in HEADLESS)
    code = (
        "import sys, importlib\n"
        f"for m in {modules!r}.split(','): importlib.import_module(m)\n"
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r})\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "", f"importing the headless layers pulled in: {out}"
