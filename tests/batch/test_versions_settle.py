"""`yibao settle FOLDER CLAIMS` with several versions: each claim under the version in force
on its discharge date, in memory and partitioned (the same bytes), manifest naming every
version file; a mid-year change carries the accumulators across (== the reference)."""
from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from yibao.core.engine import settle
from yibao.core.generate import generate_claims, write_claims
from yibao.core.reference import settle as settle_reference
from yibao.dsl.cli import main
from yibao.dsl.versions import compile_versions

from .conftest import REFERENCE

SOURCE = (REFERENCE / "policy.yb").read_text(encoding="utf-8")
RANGE = "effective 2024-01-01 to 2025-12-31"


def write_version(folder, name, start, end, changes=()):
    text = SOURCE.replace(RANGE, f"effective {start} to {end}")
    for old, new in changes:
        assert old in text
        text = text.replace(old, new)
    (folder / name).write_text(text, encoding="utf-8")


NEW_RULES = (("tier2, 3: 85%", "tier2, 3: 90%"), ("3: 800 yuan", "3: 1_000 yuan"),
             ("deductible 20_000 yuan per person", "deductible 15_000 yuan per person"),
             ("cap 300_000 yuan per person per year, 500_000",
              "cap 100_000 yuan per person per year, 500_000"))


def settle_cli(claims, folder, out, *extra):
    code = main(["settle", str(folder), str(claims), "--out", str(out),
                 "--no-progress", *extra])
    assert code in (0, 1)
    return pq.read_table(out / "claims.parquet"), pq.read_table(out / "rejects.parquet")


def by_id(table: pa.Table) -> dict:
    return {r["claim_id"]: r for r in table.to_pylist()}


@pytest.fixture(scope="module")
def claims_file(tmp_path_factory):
    """2024 and 2025 claims, plus a few from 2026 (outside every version)."""
    folder = tmp_path_factory.mktemp("claims")
    table = pa.concat_tables([generate_claims(1500, seed=7, start_year=2024, years=2),
                              generate_claims(400, seed=12, start_year=2026).slice(0, 20).set_column(
                                  0, "claim_id", pa.array([f"X{i:06d}" for i in range(20)]))])
    write_claims(table, folder / "claims.parquet")
    return folder / "claims.parquet"


def test_each_year_under_its_own_rules(tmp_path, claims_file, registry):
    folder = tmp_path / "city"
    folder.mkdir()
    write_version(folder, "policy_2024.yb", "2024-01-01", "2024-12-31")
    write_version(folder, "policy_2025.yb", "2025-01-01", "2025-12-31", NEW_RULES)
    memory, rejects = settle_cli(claims_file, folder, tmp_path / "memory")
    settle_cli(claims_file, folder, tmp_path / "parts", "--partitions", "3")
    for name in ("claims.parquet", "rejects.parquet"):
        assert (tmp_path / "memory" / name).read_bytes() == (tmp_path / "parts" / name).read_bytes()
    plans = compile_versions(folder, registry).versions
    claims = pq.read_table(claims_file)
    year = pa.compute.year(claims.column("discharge_date"))
    got = by_id(memory)
    for plan, y in zip(plans, (2024, 2025)):
        alone = settle(plan, claims.filter(pa.compute.equal(year, y)), registry)
        assert alone.results.num_rows > 500
        assert {cid: got[cid] for cid in by_id(alone.results)} == by_id(alone.results)
    outside = [r for r in rejects.to_pylist() if r["reason"] == "outside_policy_period"]
    assert sorted(r["claim_id"] for r in outside) == [f"X{i:06d}" for i in range(20)]
    manifest = json.loads((tmp_path / "memory" / "manifest.json").read_text())
    assert set(manifest["policy"]["files"]) == {"policy_2024.yb", "policy_2025.yb"}
    assert [v["effective_from"] for v in manifest["policy"]["versions"]] == \
        ["2024-01-01", "2025-01-01"]
    summary = json.loads((tmp_path / "memory" / "summary.json").read_text())
    assert summary["settled"]["rows"] == memory.num_rows and summary["balanced"]
    assert summary["layers"]["basic_inpatient"] == sum(memory.column("basic_inpatient")
                                                       .to_pylist())
    assert list(summary["layers"]) == ["basic_inpatient", "basic_outpatient", "critical",
                                       "assistance"]


def test_mid_year_change_carries_accumulators(tmp_path, claims_file, registry):
    folder = tmp_path / "city"
    folder.mkdir()
    write_version(folder, "a.yb", "2024-01-01", "2024-06-30")
    write_version(folder, "b.yb", "2024-07-01", "2025-12-31", NEW_RULES)
    memory, rejects = settle_cli(claims_file, folder, tmp_path / "memory")
    settle_cli(claims_file, folder, tmp_path / "parts", "--partitions", "3")
    for name in ("claims.parquet", "rejects.parquet"):
        assert (tmp_path / "memory" / name).read_bytes() == (tmp_path / "parts" / name).read_bytes()
    plans = compile_versions(folder, registry).versions
    ref = settle_reference(plans, pq.read_table(claims_file), registry)
    assert by_id(memory) == by_id(ref.results)
    # not what settling each half on its own gives: accumulators carried across July 1st
    claims = pq.read_table(claims_file)
    late = claims.filter(pa.compute.greater_equal(
        claims.column("discharge_date"), pa.scalar(plans[1].effective_from, pa.int32())
        .cast(pa.date32())))
    fresh = by_id(settle(plans[1], late, registry).results)
    got = by_id(memory)
    assert any(got[c] != fresh[c] for c in fresh)
