"""Per-claim results carry what a settlement system joins on (issue 15, docs/outputs.md
"Benefit results"): after claim_id, the claims' own person_id, hospital_id (when the claims
have one) and discharge_date, on the kernel and on the oracle, in every run mode, whatever
the input's row order, batching or Arrow types."""
from __future__ import annotations

import datetime

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import yibao
from yibao.core.engine import settle as settle_kernel
from yibao.core.generate import generate_claims
from yibao.core.national import NationalNamesError, national_table
from yibao.core.reference import settle as settle_reference
from yibao.core.runner import run_settle
from yibao.dsl.cli import main

POLICY = '''policy "身份列" {
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
LATER = POLICY.replace("身份列", "身份列 7月起").replace(
    "2024-01-01 to 2024-12-31", "2024-07-01 to 2024-12-31").replace("ratio 80%", "ratio 85%")
IDENTITY = ["claim_id", "person_id", "hospital_id", "discharge_date"]


@pytest.fixture
def city(tmp_path):
    (tmp_path / "city").mkdir()
    (tmp_path / "city" / "policy.yb").write_text(POLICY, encoding="utf-8")
    return yibao.compile(tmp_path / "city")


@pytest.fixture
def two_versions(tmp_path):
    """Two versions of one structure (a mid-year change: one merged kernel program)."""
    folder = tmp_path / "versions"
    folder.mkdir()
    first = POLICY.replace("2024-12-31", "2024-06-30")
    (folder / "a_first.yb").write_text(first, encoding="utf-8")
    (folder / "b_later.yb").write_text(LATER, encoding="utf-8")
    return yibao.compile(folder)


def by_claim(claims: pa.Table) -> dict:
    return {r["claim_id"]: r for r in claims.to_pylist()}


def assert_identity_of_claims(results: pa.Table, claims: pa.Table) -> None:
    """Every result row carries its own claim's person, hospital and discharge date."""
    assert results.column_names[:4] == IDENTITY
    assert results.schema.field("discharge_date").type == pa.date32()
    claim = by_claim(claims)
    for row in results.select(IDENTITY).to_pylist():
        want = claim[row["claim_id"]]
        assert (row["person_id"], row["hospital_id"], row["discharge_date"]) == (
            want["person_id"], want["hospital_id"], want["discharge_date"])


@pytest.mark.parametrize("settle", [settle_kernel, settle_reference], ids=["kernel", "oracle"])
def test_results_carry_the_claims_identity(city, settle):
    claims = generate_claims(500, seed=3)
    results = settle(city.policy, claims, city.registry).results
    assert results.num_rows > 450
    assert_identity_of_claims(results, claims)
    assert results.column_names[4:] == ["basic", "basic_deductible", "serious",
                                        "serious_deductible", "self_pay"]


@pytest.mark.parametrize("settle", [settle_kernel, settle_reference], ids=["kernel", "oracle"])
def test_versions_carry_the_identity_too(two_versions, settle):
    claims = generate_claims(500, seed=5)
    results = settle(two_versions.policy, claims, two_versions.registry).results
    assert results.num_rows > 450
    assert_identity_of_claims(results, claims)


def test_kernel_and_oracle_agree_with_identity(city, two_versions):
    claims = generate_claims(400, seed=11)
    for policy in (city, two_versions):
        kernel = settle_kernel(policy.policy, claims, policy.registry).results
        oracle = settle_reference(policy.policy, claims, policy.registry).results
        assert kernel.equals(oracle)


def test_without_hospital_id_no_hospital_column(city):
    """hospital_id only when the claims have one; the national names then say what is
    missing instead of guessing."""
    claims = generate_claims(200, seed=2).drop_columns(["hospital_id"])
    for settle in (settle_kernel, settle_reference):
        results = settle(city.policy, claims, city.registry).results
        assert results.column_names[:3] == ["claim_id", "person_id", "discharge_date"]
        assert "hospital_id" not in results.column_names
    with pytest.raises(NationalNamesError, match="hospital_id"):
        national_table(city.policy, results)


def test_empty_batch_has_the_identity_columns(city, two_versions):
    empty = generate_claims(10, seed=1).slice(0, 0)
    for policy in (city, two_versions):
        for settle in (settle_kernel, settle_reference):
            results = settle(policy.policy, empty, policy.registry).results
            assert results.num_rows == 0 and results.column_names[:4] == IDENTITY


def test_api_identity_does_not_follow_order_batching_or_types(city):
    """yibao.settle: shuffled rows, a chunked stream, dictionary ids and timestamp dates
    give the same table."""
    claims = generate_claims(600, seed=13)
    got = yibao.settle(city, claims).results
    assert_identity_of_claims(got, claims)
    shuffled = claims.take(pa.array(np.random.default_rng(4).permutation(claims.num_rows)))
    for field in ("person_id", "hospital_id"):
        i = shuffled.schema.get_field_index(field)
        shuffled = shuffled.set_column(i, field, shuffled.column(i).dictionary_encode())
    i = shuffled.schema.get_field_index("discharge_date")
    shuffled = shuffled.set_column(i, "discharge_date",
                                   shuffled.column(i).cast(pa.timestamp("ms")))
    again = yibao.settle(city, shuffled.to_reader(max_chunksize=37)).results
    assert again.equals(got)


def test_runs_carry_the_identity_in_every_mode_same_bytes(city, tmp_path):
    """In memory and partitioned (any partition count): the same claims.parquet bytes, with
    the identity columns of each claim."""
    claims = generate_claims(3000, seed=17)
    pq.write_table(claims, tmp_path / "c.parquet", row_group_size=500)
    files = {}
    for parts in (None, 3, 16):
        out = tmp_path / f"o{parts}"
        run_settle(city.policy, tmp_path / "c.parquet", out, registry=city.registry,
                   progress=False, partitions=parts)
        files[parts] = (out / "claims.parquet").read_bytes()
    assert files[3] == files[None] and files[16] == files[None]
    results = pq.read_table(tmp_path / "oNone" / "claims.parquet")
    assert results.num_rows > 2900
    assert_identity_of_claims(results, claims)


def test_cli_claims_file_has_the_identity(city, tmp_path, capsys):
    claims = generate_claims(300, seed=19)
    pq.write_table(claims, tmp_path / "c.parquet")
    assert main(["settle", str(city.source), str(tmp_path / "c.parquet"), "--out",
                 str(tmp_path / "out"), "--no-progress"]) in (0, 1)
    results = pq.read_table(tmp_path / "out" / "claims.parquet")
    assert_identity_of_claims(results, claims)
    assert results.column("discharge_date")[0].as_py() >= datetime.date(2024, 1, 1)
