"""Import contract: the kernel layer never imports the definitions, catalogs, pandas or CLI."""
from __future__ import annotations

import ast
from pathlib import Path

CORE = Path(__file__).resolve().parents[1] / "engine" / "core"
FORBIDDEN = ("engine.catalog", "engine.chip", "engine.model", "engine.api", "engine.cli",
             "engine.tables", "engine.results", "engine.market", "pandas", "pyarrow", "matplotlib")
FORBIDDEN_RELATIVE = ("catalog", "chip", "model", "api", "cli", "tables", "results", "market")


def _imports(path: Path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield a.name
        elif isinstance(node, ast.ImportFrom):
            if node.level >= 2:  # from .. import x / from ..x import y
                yield "engine." + (node.module or "") + "".join(
                    f".{a.name}" for a in node.names if not node.module)
            else:
                yield node.module or ""


def test_core_imports_only_downward():
    files = sorted(CORE.glob("*.py")) + sorted((CORE.parent.parent / "ext").glob("*.pyx"))
    assert files
    for f in files:
        if f.suffix == ".pyx":
            text = f.read_text()
            for bad in FORBIDDEN:
                assert f"import {bad}" not in text and f"from {bad}" not in text, (f, bad)
            continue
        for mod in _imports(f):
            for bad in FORBIDDEN:
                assert not (mod == bad or mod.startswith(bad + ".")), (f.name, mod)
            assert not any(mod == f"engine.{r}" or mod.startswith(f"engine.{r}.")
                           for r in FORBIDDEN_RELATIVE), (f.name, mod)
