"""The top-level Python API (docs/api.md): ``yibao.compile`` and ``yibao.settle``. Every input
kind settles to the same results as the engine on a pyarrow Table, the kernel agrees with the
reference evaluator, and ``compile`` loads the plugins a policy uses as the CLI does."""
from __future__ import annotations

import re
from pathlib import Path

import pyarrow.parquet as pq
import pytest

import yibao
from yibao.core.generate import generate_claims
from yibao.core.reference import settle as settle_reference
from yibao.dsl.errors import PolicyError

ROOT = Path(__file__).resolve().parents[2]
TCM_POLICY = '''policy "中医倾斜" {
  effective 2024-01-01 to 2024-12-31
}
attribute tcm_amount: money
layer basic "基本医保(中医倾斜)" {
  base in_scope - self_first
  ratio 68% + tcm_uplift(tcm_amount, in_scope, 10%)
}
'''


@pytest.fixture
def here(tmp_path, monkeypatch):
    """A working directory holding claims/claims.parquet (1,000 generated claims, 2024), as
    docs/api.md assumes."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "claims").mkdir()
    pq.write_table(generate_claims(1_000, seed=11), tmp_path / "claims" / "claims.parquet")
    return tmp_path


def test_compile_takes_a_city_name_a_folder_and_a_file():
    by_name = yibao.compile("reference")
    assert isinstance(by_name, yibao.CompiledPolicy)
    assert by_name.source == ROOT / "city_configs" / "reference" or by_name.source.name == "reference"
    by_folder = yibao.compile(ROOT / "city_configs" / "reference")
    by_file = yibao.compile(str(ROOT / "city_configs" / "reference" / "policy.yb"))
    assert by_name.policy == by_folder.policy == by_file.policy


def test_compile_names_what_is_wrong(tmp_path):
    with pytest.raises(FileNotFoundError, match="bundled"):
        yibao.compile("no_such_city_zz")
    (tmp_path / "policy.yb").write_text(TCM_POLICY.replace("in_scope - self_first",
                                                           "in_scpoe"), encoding="utf-8")
    with pytest.raises(PolicyError, match=r"policy\.yb:\d+:\d+"):
        yibao.compile(tmp_path)


def test_every_input_kind_settles_alike(here):
    policy = yibao.compile("reference")
    table = pq.read_table("claims/claims.parquet")
    want = yibao.settle(policy, table)
    assert want.results.num_rows + want.rejects.num_rows == 1_000
    pl = pytest.importorskip("polars")
    duckdb = pytest.importorskip("duckdb")
    kinds = {"file": "claims/claims.parquet", "folder": Path("claims"),
             "batch reader": table.to_reader(max_chunksize=97),
             "polars": pl.read_parquet("claims/claims.parquet"),
             "polars lazy": pl.scan_parquet("claims/claims.parquet"),
             "duckdb": duckdb.sql("select * from 'claims/claims.parquet'")}
    for kind, claims in kinds.items():
        got = yibao.settle(policy, claims)
        assert got.results.equals(want.results), kind
        assert got.rejects.num_rows == want.rejects.num_rows, kind


def test_pandas_frame_with_dates(here):
    pd = pytest.importorskip("pandas")
    policy = yibao.compile("reference")
    want = yibao.settle(policy, "claims")
    frame = pd.read_parquet("claims/claims.parquet")
    for column in ("admit_date", "discharge_date"):  # pandas' own datetime64 dates
        frame[column] = pd.to_datetime(frame[column])
    got = yibao.settle(policy, frame)
    assert got.results.equals(want.results)


def test_compile_loads_the_plugins_the_policy_uses(tmp_path):
    """compile loads yibao's own plugins (tcm_uplift) as `yibao settle` does, and keeps the
    registry, so settle needs no hand-built one; the kernel agrees with the reference."""
    (tmp_path / "policy.yb").write_text(TCM_POLICY, encoding="utf-8")
    policy = yibao.compile(tmp_path)
    claims = generate_claims(300, seed=5)  # generated claims carry tcm_amount
    assert pc_sum(claims, "tcm_amount") > 0
    kernel = yibao.settle(policy, claims)
    oracle = settle_reference(policy.policy, claims, policy.registry)
    assert kernel.results.num_rows == 300
    assert kernel.results.equals(oracle.results)
    assert yibao.settle(tmp_path, claims).results.equals(kernel.results)  # a path works too


def pc_sum(table, column) -> int:
    import pyarrow.compute as pc
    return pc.sum(table.column(column)).as_py() or 0


def test_docs_api_examples_run(here):
    """Every ```python block of docs/api.md runs as written."""
    pytest.importorskip("polars")
    pytest.importorskip("duckdb")
    pytest.importorskip("pandas")
    text = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert len(blocks) >= 6  # the quick start and one per input kind
    for block in blocks:
        scope: dict = {}
        exec(compile(block, "docs/api.md", "exec"), scope)  # noqa: S102
        assert scope["result"].results.num_rows > 0


def test_import_yibao_does_not_make_core_import_dsl():
    import subprocess
    import sys
    code = ("import sys, yibao, yibao.core.engine; "
            "print(any(m.startswith('yibao.dsl') for m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip() == "False"  # the API imports the language lazily
