"""Start-up, part two: what a command does not need, it does not import (issue 14, `yibao
check` ≤ 2× `import pyarrow`). A structure test, not a timed one: a fresh process runs
yibao as its program and reports ``sys.modules``; a module imported ahead of its use fails
here on any machine, however fast.

- `yibao check` compiles: no Arrow (pyarrow, numpy), no Lark (the parser is the generated
  tables), no runtime of the layers, the provider payment, grouping or supervision, even for
  a policy that has pools, groupers and flags (shanghai);
- building the command line (`--help` of every command) imports no command's implementation:
  not the compiler, not the AST, not pyarrow."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from yibao.dsl.cli import discover_commands

from .conftest import CONFIGS, REPO

RUN_AS_PROGRAM = """
import json, sys
from yibao.dsl.cli import main
sys.argv = ["yibao", *sys.argv[1:]]
try:
    code = main()
except SystemExit as exc:  # --help
    code = exc.code
print("MODULES " + json.dumps(sorted(sys.modules)))
sys.exit(code)
"""

ARROW_AND_LARK = ("pyarrow", "numpy", "pandas", "lark")
# what runs a plan: a compile never needs it (tests/tools/test_compiler_imports.py names the
# modules the compiler may not import; these are what they would have pulled in)
RUNTIME = ("yibao.core.engine", "yibao.core._kernel", "yibao.core.runner",
           "yibao.core.provider", "yibao.core.arrow_io", "yibao.core.reference",
           "yibao.core.points.compute", "yibao.core.points.settle",
           "yibao.core.grouping.drg", "yibao.core.grouping._drg", "yibao.core.grouping._table",
           "yibao.core.supervision.stays", "yibao.core.supervision.compute",
           "yibao.core.supervision.run", "yibao.plugins.family.mutual_aid", "rich")
IMPLEMENTATION = ("yibao.dsl.compiler", "yibao.dsl.ast", "yibao.dsl.parser",
                  "yibao.core.registry", "yibao.plugins.manager")


def modules_of(*argv) -> tuple:
    """(exit code, every module loaded) of ``yibao ARGV`` in a fresh process."""
    done = subprocess.run([sys.executable, "-c", RUN_AS_PROGRAM, *argv], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    line = next(x for x in done.stdout.splitlines() if x.startswith("MODULES "))
    return done.returncode, set(json.loads(line[len("MODULES "):]))


def under(loaded: set, names) -> list:
    """The loaded modules that are one of ``names`` or inside one of them."""
    return sorted(m for m in loaded if any(m == n or m.startswith(n + ".") for n in names))


@pytest.mark.parametrize("city", ["shanghai", "reference", "rizhao"])
def test_check_imports_no_arrow_no_lark_and_no_runtime(city):
    code, loaded = modules_of("check", str(CONFIGS / city))
    assert code == 0
    assert under(loaded, ARROW_AND_LARK) == []
    assert under(loaded, RUNTIME) == []


def test_check_still_loads_the_plugins_the_compiler_reads():
    """The compile-only registry still imports yibao's own plugins (family's key, tcm's
    functions), just not the family stage's run-time module."""
    code, loaded = modules_of("check", str(CONFIGS / "jinhua"))
    assert code == 0
    assert {"yibao.plugins.family", "yibao.plugins.tcm"} <= loaded


@pytest.mark.parametrize("command", sorted(discover_commands()))
def test_help_of_every_command_imports_no_implementation(command):
    code, loaded = modules_of(command, "--help")
    assert code == 0
    assert under(loaded, ARROW_AND_LARK) == []
    assert under(loaded, IMPLEMENTATION) == []


def test_pandas_is_hidden_from_pyarrow_imported_after_the_command_started():
    """`check` never imports pyarrow; when the same process imports it later, pyarrow is told
    there is no pandas at that moment (cli.pyarrow_without_pandas_when_imported), and pandas
    still comes when asked for."""
    pytest.importorskip("pandas")
    script = f"""
import sys
from yibao.dsl.cli import main
sys.argv = ["yibao", "check", {str(CONFIGS / "shanghai")!r}]
assert main() == 0 and "pyarrow" not in sys.modules
import pyarrow as pa
pa.array(["a"]); pa.scalar(1)
assert "pandas" not in sys.modules, "a conversion imported pandas"
assert pa.__spec__.loader is pa.__loader__ and type(pa.__loader__).__name__ == "SourceFileLoader"
assert pa.table({{"x": [1.5, None]}}).to_pandas()["x"].isna().tolist() == [False, True]
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "ok"


def test_a_lazy_module_imports_on_first_read_and_names_a_missing_one():
    from yibao.core.lazy import lazy_module
    script = """
import sys
from yibao.core.lazy import lazy_module
np = lazy_module("numpy")
assert "numpy" not in sys.modules
assert np.int64(3) + 1 == 4 and "numpy" in sys.modules and np.ndarray is sys.modules["numpy"].ndarray
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    with pytest.raises(ImportError, match="no_such_module_zz"):
        lazy_module("no_such_module_zz").anything


def test_a_lazy_module_survives_pickling():
    """Spark pickles a run's functions with the globals they read (a ``lazy_module`` among
    them) and unpickles them in its workers: the copy stands for the same module."""
    import pickle

    from yibao.core.lazy import lazy_module
    copy = pickle.loads(pickle.dumps(lazy_module("math")))
    assert copy.sqrt(16) == 4.0 and repr(copy) == "<lazy module 'math'>"


def test_a_run_without_pools_never_imports_provider_payment(tmp_path):
    """`yibao settle` of a policy without a provider part (the reference policy) leaves the
    provider-payment runtime unimported; a policy with pools (Rizhao) imports it."""
    claims = tmp_path / "claims.parquet"
    assert modules_of("generate", "-n", "200", "--out", str(claims))[0] == 0
    code, loaded = modules_of("settle", str(CONFIGS / "reference"), str(claims), "--out",
                              str(tmp_path / "plain"), "--no-progress")
    assert code == 0 and "yibao.core.provider" not in loaded
    code, loaded = modules_of("settle", str(CONFIGS / "rizhao"), str(claims), "--out",
                              str(tmp_path / "pools"), "--no-progress")
    assert code in (0, 1) and "yibao.core.provider" in loaded
