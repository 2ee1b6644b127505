"""claims.parquet stores the result columns the claims contract never leaves null as Parquet
REQUIRED (docs/outputs.md "Benefit results", issue 14 w20): chosen by the policy, never by
the data; the values are those of the in-memory results; files written before (every column
OPTIONAL) read together with newer ones."""
from __future__ import annotations

from dataclasses import replace

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

import yibao
from yibao.core.claim_rules import null_checked
from yibao.core.engine import settle as settle_kernel
from yibao.core.generate import generate_claims, write_claims
from yibao.core.plan import TEXT, ColumnDecl, Type
from yibao.core.settlement import required_columns, settled_file_schema
from yibao.dsl.cli import main

POLICY = '''policy "必填列" {
  effective 2024-01-01 to 2024-12-31
}
layer basic "基本医保" {
  base in_scope - self_first
  deductible 800 yuan per person per year
  ratio 80%
  cap 200_000 yuan per person per year
}
layer serious "大病保险" {
  base in_scope - paid
  deductible 15000 yuan per person per year
  ratio 60%
}
'''
# a later version with a layer the first has not: its column is null for the first's claims
LATER = POLICY.replace("2024-01-01 to 2024-12-31", "2025-01-01 to 2025-12-31") + '''
layer assistance "医疗救助" {
  applies when low_income
  base total - paid
  ratio 50%
}
'''
REQUIRED = ["claim_id", "person_id", "discharge_date", "basic", "basic_deductible", "serious",
            "serious_deductible", "self_pay"]


def compiled(folder, texts):
    folder.mkdir()
    for name, text in texts.items():
        (folder / name).write_text(text, encoding="utf-8")
    return yibao.compile(folder)


def settle_cli(tmp_path, policy_folder, claims, out, *extra):
    path = tmp_path / "claims.parquet"
    write_claims(claims, path)
    assert main(["settle", str(policy_folder), str(path), "--out", str(out), "--no-progress",
                 "--overwrite", *extra]) in (0, 1)
    return pq.ParquetFile(str(out / "claims.parquet"))


def optional_columns(file: pq.ParquetFile) -> set:
    """The columns the Parquet file stores OPTIONAL (with definition levels)."""
    return {c.name for c in file.schema if c.max_definition_level > 0}


@pytest.mark.parametrize("mode", [(), ("--partitions", "3")], ids=["memory", "partitioned"])
def test_contract_columns_are_required_in_the_file(tmp_path, mode):
    compiled(tmp_path / "city", {"policy.yb": POLICY})
    claims = generate_claims(3000, seed=4)
    file = settle_cli(tmp_path, tmp_path / "city", claims, tmp_path / "o", *mode)
    assert optional_columns(file) == {"hospital_id"}  # the contract lets a claim have none
    assert [f.name for f in file.schema_arrow if not f.nullable] == REQUIRED
    # the values are the engine's, row for row by claim id
    city = yibao.compile(tmp_path / "city")
    engine = settle_kernel(city.policy, claims, city.registry).results
    got = file.read()
    key = [("claim_id", "ascending")]
    assert got.sort_by(key).equals(engine.cast(got.schema).sort_by(key))


def test_a_layer_of_some_versions_stays_nullable(tmp_path):
    policy = compiled(tmp_path / "versions", {"a.yb": POLICY, "b.yb": LATER})
    plans = policy.policy.versions
    assert "assistance" not in required_columns(plans)
    assert set(REQUIRED) <= required_columns(plans)
    claims = generate_claims(3000, seed=6, years=2)
    file = settle_cli(tmp_path, tmp_path / "versions", claims, tmp_path / "o")
    assert optional_columns(file) == {"hospital_id", "assistance"}
    assert file.read(columns=["assistance"]).column(0).null_count > 0  # the 2024 claims


def test_required_columns_follow_the_null_checks(tmp_path):
    """hospital_id is REQUIRED only where every version rejects a claim without one (reads
    it, not as an accumulator key); person_id always is (null-checked whatever the plan)."""
    plan = compiled(tmp_path / "city", {"policy.yb": POLICY}).policy.versions[0]
    reads = replace(plan, columns=plan.columns + (ColumnDecl("hospital_id", Type(TEXT)),))
    assert "hospital_id" in null_checked(reads) and "person_id" in null_checked(plan)
    assert "hospital_id" in required_columns([reads])
    assert "hospital_id" not in required_columns([reads, plan])
    schema = pa.schema([("claim_id", pa.string()), ("hospital_id", pa.string()),
                        ("basic", pa.int64()), ("pool", pa.string())])
    written = settled_file_schema([reads], schema)
    assert [f.nullable for f in written] == [False, False, False, True]  # a stage's column


def test_files_before_and_after_read_together(tmp_path):
    """A dataset of a file written before (every column OPTIONAL) and one written now reads
    every row with the same values, whichever file comes first."""
    compiled(tmp_path / "city", {"policy.yb": POLICY})
    file = settle_cli(tmp_path, tmp_path / "city", generate_claims(2000, seed=8),
                      tmp_path / "o")
    new = file.read()
    old = new.cast(pa.schema([f.with_nullable(True) for f in new.schema]))
    pq.write_table(old, tmp_path / "old.parquet")
    for first, second in (("old.parquet", "o/claims.parquet"),
                          ("o/claims.parquet", "old.parquet")):
        both = ds.dataset([str(tmp_path / first), str(tmp_path / second)]).to_table()
        assert both.num_rows == 2 * new.num_rows
        assert both.cast(old.schema).equals(pa.concat_tables([old, old]))
