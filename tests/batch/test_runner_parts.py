"""The runner's parts (issue 13): each imports alone, and core's modules import one another
without a circle (core/spark.py uses the piece, not the runner)."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parents[2] / "core"
PARTS = ("sources", "piece", "spill", "manifest", "runner", "spark")


@pytest.mark.parametrize("part", PARTS)
def test_each_part_imports_alone(part):
    done = subprocess.run([sys.executable, "-c", f"import yibao.core.{part}"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def _imports(module: Path) -> set:
    """The core modules ``module`` imports (relative imports, at any depth of the file)."""
    found = set()
    for node in ast.walk(ast.parse(module.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            names = [node.module] if node.module else [a.name for a in node.names]
            found.update(n.split(".")[0] for n in names)
    return {n for n in found if (CORE / f"{n}.py").exists()}


def test_no_import_circle_among_core_modules():
    graph = {p.stem: _imports(p) for p in CORE.glob("*.py")}

    def reach(start):
        seen, todo = set(), [start]
        while todo:
            for nxt in graph.get(todo.pop(), ()):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen
    circles = sorted(m for m in ("sources", "piece", "spill", "runner", "spark")
                     if m in reach(m))
    assert circles == [], circles
    assert "runner" not in reach("spark") and "runner" not in reach("piece")
