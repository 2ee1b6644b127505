"""The compiler builds the IR; it never imports the code that runs it (issue 13).

Walks the import statements of every compiler module (``dsl/`` bar the command line, the
studio and the tools that settle) and fails when one names a runtime module of ``core/``:
the evaluators, the provider and grouping runtimes, the batch job. What the compiler and
the runtime both need lives in a neutral module (``core/money.py`` for exact rounding,
``core/grouping/plan.py`` for the DRG grouper nodes and the scheme's MDC list read as data,
``core/policy.py`` for the rule versions keep).
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DSL = ROOT / "dsl"
TOOLS = ("cli.py", "commands", "studio")  # join dsl and core on purpose: they settle

# Modules that evaluate a plan (yibao.core.X): none of these may be imported by the compiler.
RUNTIME = {
    "engine", "reference", "lower", "vector", "_kernel", "arrow_io", "settlement", "explain",
    "provider", "runner", "spill", "piece", "spark", "sources", "partition", "manifest",
    "points.settle", "points.compute", "points.reference", "points.prepay", "points.calibrate",
    "points._pass", "grouping.tables", "grouping.drg", "grouping._drg", "grouping.reference",
    "grouping.compile", "grouping.inputs", "grouping.convert",
    "supervision.compute", "supervision.reference", "supervision.run",
}
RUNTIME_MODULES = {f"yibao.core.{m}" for m in RUNTIME}


def compiler_modules() -> list:
    return sorted(p for p in DSL.rglob("*.py")
                  if p.relative_to(DSL).parts[0] not in TOOLS)


def imported(path: Path) -> set:
    """Every absolute module an import statement in ``path`` names, ``from A import b``
    counting as both ``A`` and ``A.b`` (b may be a submodule)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.add(node.module)
            out.update(f"{node.module}.{alias.name}" for alias in node.names)
    return out


def runtime_imports(path: Path) -> list:
    return sorted(m for m in imported(path)
                  if any(m == r or m.startswith(r + ".") for r in RUNTIME_MODULES))


def test_the_walk_sees_the_compiler():
    names = {p.relative_to(DSL).as_posix() for p in compiler_modules()}
    assert {"compiler.py", "passes/check_groupers.py", "passes/check_pools.py",
            "table_files.py", "versions.py"} <= names
    assert not any(n.startswith(("commands/", "studio/")) for n in names)


@pytest.mark.parametrize("path", compiler_modules(), ids=lambda p: p.relative_to(DSL).as_posix())
def test_no_compiler_module_imports_runtime(path):
    assert runtime_imports(path) == [], \
        f"{path.relative_to(ROOT)} imports runtime code: put what both need in a neutral module"


def test_the_walk_catches_what_the_issue_named(tmp_path):
    """The imports issue 13 found in the compiler are caught, in both spellings."""
    bad = tmp_path / "bad.py"
    bad.write_text("from yibao.core.grouping.tables import load_tables\n"
                   "def f():\n    from yibao.core.points import settle\n"
                   "    import yibao.core.provider\n", encoding="utf-8")
    assert runtime_imports(bad) == ["yibao.core.grouping.tables",
                                    "yibao.core.grouping.tables.load_tables",
                                    "yibao.core.points.settle", "yibao.core.provider"]
