"""Start-up: a command imports what it uses and nothing else (issue 14, `yibao check` whole
process ≤ 2× `import pyarrow`). Not timed: the tests look at ``sys.modules`` of a fresh
process running yibao as its program (``main()`` without ``argv``, as the ``yibao`` script and
``python -m yibao.dsl.cli`` call it), so they fail on an import, never on a slow machine."""
from __future__ import annotations

import json
import subprocess
import sys

import pyarrow.parquet as pq
import pytest

from yibao.core.generate import generate_claims

from .conftest import CONFIGS, REPO

# what no command but `studio` and `settle --engine spark` may load: data-frame libraries
# (pandas came in through pyarrow's first conversion of a Python value) and the web editor
HEAVY = ("pandas", "polars", "duckdb", "nicegui", "pyspark", "yibao.dsl.studio")

RUN_AS_PROGRAM = """
import json, sys
from yibao.dsl.cli import main
sys.argv = ["yibao", *sys.argv[1:]]
code = main()
heavy = json.loads(sys.stdin.read())
loaded = sorted(m for m in sys.modules if any(m == h or m.startswith(h + ".") for h in heavy))
print("LOADED " + json.dumps(loaded))
sys.exit(code)
"""


def modules_of(*argv) -> tuple:
    """(exit code, the HEAVY modules loaded) of ``yibao ARGV`` in a fresh process."""
    done = subprocess.run([sys.executable, "-c", RUN_AS_PROGRAM, *argv], cwd=REPO,
                          input=json.dumps(HEAVY), capture_output=True, text=True, timeout=300)
    line = next(x for x in done.stdout.splitlines() if x.startswith("LOADED "))
    return done.returncode, json.loads(line[len("LOADED "):])


@pytest.fixture(scope="module")
def claims_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("startup") / "claims.parquet"
    table = generate_claims(400, seed=3)
    pq.write_table(table, path)
    return path, table.column("claim_id")[0].as_py()


@pytest.mark.parametrize("city", ["shanghai", "reference", "rizhao"])
def test_check_of_a_city_loads_no_data_frame_library_nor_the_studio(city):
    code, loaded = modules_of("check", str(CONFIGS / city))
    assert code == 0
    assert loaded == []


def test_explain_loads_no_data_frame_library(claims_file):
    path, claim_id = claims_file
    code, loaded = modules_of("explain", str(CONFIGS / "reference"), str(path),
                              "--claim-id", claim_id)
    assert code == 0
    assert loaded == []


def test_settle_loads_no_data_frame_library(claims_file, tmp_path):
    path, _ = claims_file
    code, loaded = modules_of("settle", str(CONFIGS / "reference"), str(path),
                              "--out", str(tmp_path / "out"), "--no-progress")
    assert code in (0, 1)  # 1: some generated claims are rejected
    assert loaded == []


def test_hiding_pandas_from_pyarrow_keeps_every_real_use_of_pandas():
    """After ``pyarrow_without_pandas`` a conversion no longer imports pandas, but asking
    pyarrow for pandas (``to_pandas``) still works, and so does converting pandas objects
    afterwards (NaN as null under ``from_pandas``)."""
    pytest.importorskip("pandas")
    script = """
import sys
import pyarrow as pa
from yibao.dsl.cli import pyarrow_without_pandas
pyarrow_without_pandas()
pa.array(["a", "b"]); pa.scalar(1)
assert "pandas" not in sys.modules, "a conversion imported pandas"
frame = pa.table({"x": [1.5, None]}).to_pandas()
assert "pandas" in sys.modules and frame["x"].isna().tolist() == [False, True]
import pandas as pd
assert pa.array(pd.Series([1.0, float("nan")]), from_pandas=True).null_count == 1
assert pa.Table.from_pandas(pd.DataFrame({"y": [1, 2]})).column("y").to_pylist() == [1, 2]
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_a_caller_that_passes_argv_keeps_pyarrow_as_it_was(claims_file):
    """``main([...])`` in a caller's process (tests, yibao_api) leaves pyarrow's pandas
    lookup alone: only the process's own command line hides pandas."""
    pytest.importorskip("pandas")
    path, _ = claims_file
    script = f"""
import sys
import pyarrow as pa
from yibao.dsl.cli import main
main(["check", {str(CONFIGS / "shanghai")!r}])
pa.array([1, 2])
print("pandas" in sys.modules)
"""
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "True"
