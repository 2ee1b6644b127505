"""`yibao settle` with a provider part: hospitals.parquet and pools.parquet come out of the run
itself (staged, hashed in the manifest, per-pool totals in summary.json) and are the same
bytes whatever the partition count."""
from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from yibao.core import provider, runner
from yibao.core.engine import settle
from yibao.core.generate import generate_claims, write_claims
from yibao.core.manifest import sha256_file
from yibao.core.partition import buckets, partition_of
from yibao.core.runner import run_settle
from yibao.dsl.commands._common import registry as full_registry
from yibao.dsl.compiler import compile_policy

FILES = ("claims.parquet", "rejects.parquet", "hospitals.parquet", "pools.parquet",
         "flags.parquet", "hospital_indicators.parquet")  # Jinhua has supervision flags


@pytest.fixture(scope="module")
def registry():
    return full_registry()


@pytest.fixture(scope="module")
def jinhua(registry):
    return compile_policy("city_configs/jinhua", registry=registry)


@pytest.fixture(scope="module")
def claims():
    """20,000 generated claims with a duplicated claim id and a negative total, so some rows
    are rejected and must stay out of the provider sums."""
    t = generate_claims(20_000)
    ids = t.column("claim_id").to_pylist()
    ids[19_000] = ids[3]
    total = t.column("total").to_pylist()
    total[500] = -1
    t = t.set_column(0, "claim_id", pa.array(ids, pa.string()))
    return t.set_column(t.schema.get_field_index("total"), "total", pa.array(total, pa.int64()))


@pytest.fixture(scope="module")
def runs(jinhua, claims, registry, tmp_path_factory):
    """The same input settled in memory and in 3 partitions."""
    folder = tmp_path_factory.mktemp("provider_runs")
    write_claims(claims, folder / "in.parquet", row_group_size=3_000)
    mem = run_settle(jinhua, folder / "in.parquet", folder / "mem", registry=registry,
                     progress=False)
    parts = run_settle(jinhua, folder / "in.parquet", folder / "p3", registry=registry,
                       progress=False, partitions=3)
    return folder, mem, parts


def test_same_bytes_in_memory_and_in_three_partitions(runs, jinhua, claims):
    folder, mem, parts = runs
    assert (mem.mode, parts.mode, parts.partitions) == ("memory", "partitioned", 3)
    for name in FILES:
        assert (folder / "mem" / name).read_bytes() == (folder / "p3" / name).read_bytes(), name
    # the partitions really split the hospitals' claims (else the test would prove nothing)
    part = partition_of(buckets(jinhua, claims), 3)
    hospitals = claims.column("hospital_id").to_numpy(zero_copy_only=False)
    first = hospitals[0]
    assert len(set(part[hospitals == first].tolist())) == 3
    assert mem.totals.rejected_rows == 3  # both copies of the duplicate, the negative total


def test_provider_files_equal_the_in_memory_year_of_the_accepted_claims(runs, jinhua, claims):
    folder, mem, _ = runs
    batch = settle(jinhua, claims)
    want_h, want_p = provider.settle_provider_year(jinhua, claims, batch.results)
    hospitals = pq.read_table(folder / "p3" / "hospitals.parquet")
    pools = pq.read_table(folder / "p3" / "pools.parquet")
    assert hospitals.to_pylist() == want_h.to_pylist()
    assert pools.to_pylist() == want_p.to_pylist()
    assert pools.num_rows == len(jinhua.provider.pools)
    assert sum(p["points"] for p in pools.to_pylist()) > 0


def test_manifest_hashes_and_counts_every_output(runs):
    folder, _, _ = runs
    for run in ("mem", "p3"):
        manifest = json.loads((folder / run / "manifest.json").read_text())
        assert sorted(manifest["outputs"]) == sorted(FILES)
        for name in FILES:
            entry = manifest["outputs"][name]
            assert entry["sha256"] == sha256_file(folder / run / name)
            assert entry["rows"] == pq.read_metadata(folder / run / name).num_rows
    assert manifest["outputs"]["pools.parquet"]["rows"] == 3


def test_summary_has_per_pool_totals(runs, jinhua):
    folder, mem, parts = runs
    summary = json.loads((folder / "p3" / "summary.json").read_text())
    hospitals = pq.read_table(folder / "p3" / "hospitals.parquet").to_pylist()
    pools = pq.read_table(folder / "p3" / "pools.parquet").to_pylist()
    assert list(summary["pools"]) == [p.name for p in jinhua.provider.pools]
    for row in pools:
        got = summary["pools"][row["pool"]]
        mine = [h for h in hospitals if h["pool"] == row["pool"]]
        assert got["distributed"] == row["distributed"] == sum(h["value"] for h in mine)
        assert got["points"] == row["points"] and got["fund_amt"] == row["fund_amt"]
        assert got["claims"] == sum(h["claims"] for h in mine)
        assert got["setl_amt"] == sum(h["setl_amt"] for h in mine)
        assert got["hospitals"] == len(mine)
    # every accepted claim is in at most one pool
    assert sum(p["claims"] for p in summary["pools"].values()) <= summary["settled"]["rows"]
    assert mem.pools == parts.pools == summary["pools"]


def test_provider_year_is_the_same_from_any_pieces(jinhua, claims):
    """ProviderYear over uneven pieces of whole persons == one piece (and the JSON form of the
    partials, used by the Spark engine, loses nothing). Duplicate ids are dropped first:
    across pieces only the runner can see them."""
    keep = np.ones(claims.num_rows, bool)
    keep[[3, 19_000]] = False
    claims = claims.filter(pa.array(keep))
    batch = settle(jinhua, claims)
    one = provider.ProviderYear(jinhua)
    one.add(claims, batch.results)
    part = partition_of(buckets(jinhua, claims), 5)
    many = provider.ProviderYear(jinhua)
    for p in range(5):
        piece = claims.filter(pa.array(part == p))
        partials = provider.provider_partials(jinhua, piece, settle(jinhua, piece).results)
        many.merge(provider.partials_from_json(provider.partials_to_json(partials)))
    a, b = one.settle(), many.settle()
    assert a[0].equals(b[0]) and a[1].equals(b[1])


def test_a_failed_run_publishes_no_provider_file(jinhua, claims, registry, tmp_path,
                                                  monkeypatch):
    write_claims(claims.slice(0, 4_000), tmp_path / "in.parquet")

    def crash(*args):
        raise RuntimeError("killed while writing the summary")
    monkeypatch.setattr(runner, "_finish", crash)
    with pytest.raises(RuntimeError):
        run_settle(jinhua, tmp_path / "in.parquet", tmp_path / "o", registry=registry,
                   progress=False, partitions=2)
    assert [p.name for p in (tmp_path / "o").iterdir()] == [".yibao.lock"]  # the lock only


def test_cli_prints_the_pools_and_refuses_to_overwrite_them(tmp_path, capsys):
    import argparse
    from yibao.dsl.commands import settle as cmd
    write_claims(generate_claims(2_000, 21), tmp_path / "in.parquet")
    args = argparse.Namespace(claims=[str(tmp_path / "in.parquet")], policy="city_configs/jinhua",
                              out=str(tmp_path / "o"), memory_limit=None, engine="local",
                              partitions=None, overwrite=False, no_progress=True)
    assert cmd.run(args) == 0
    assert "provider payment: 3 pool(s)" in capsys.readouterr().out
    for name in ("claims.parquet", "rejects.parquet", "summary.json", "manifest.json"):
        (tmp_path / "o" / name).unlink()
    assert cmd.run(args) == 2  # hospitals.parquet alone is a result worth protecting
    assert "hospitals.parquet" in capsys.readouterr().err


@pytest.mark.parametrize("parts", [None, 3])
def test_a_claim_without_a_hospital_is_rejected_not_a_crash(jinhua, registry, tmp_path, parts):
    """Under a policy that pays hospitals, a claim whose hospital_id is null cannot be paid
    to one: it is rejected (``null_value``: hospital_id) and the rest settle; the provider
    step crashed sorting the year's hospitals with a None among them (session 10 review)."""
    t = generate_claims(3_000, seed=11)
    ids = t.column("hospital_id").to_pylist()
    missing = list(range(5, 3_000, 97))
    for i in missing:
        ids[i] = None
    t = t.set_column(t.schema.get_field_index("hospital_id"), "hospital_id",
                     pa.array(ids, pa.string()))
    write_claims(t, tmp_path / "in.parquet")
    s = run_settle(jinhua, tmp_path / "in.parquet", tmp_path / "o", registry=registry,
                   progress=False, partitions=parts)
    rejects = pq.read_table(tmp_path / "o" / "rejects.parquet").to_pylist()
    nulls = [r for r in rejects if r["message"].endswith(": hospital_id")]
    assert sorted(r["row"] for r in nulls) == missing
    assert {r["reason"] for r in nulls} == {"null_value"}
    assert s.totals.balanced
    assert pq.read_table(tmp_path / "o" / "hospitals.parquet").num_rows > 0
