"""Provider settlement of one DRG pool: yibao's points engine vs the same pipeline in DuckDB SQL.

See peers_provider.py for the pool. Input: ``generate_claims(n, seed=7)`` grouped once with
``group_drg`` and cached as Parquet in the session's temp dir. Run:
  cd /work/main && /work/venv/bin/python -m pytest benchmarks/test_bench_provider.py -q \
      --benchmark-columns=mean,min,max,rounds --benchmark-sort=name
(``YIBAO_BENCH_SIZES=1000000,5000000`` for 5M too.)
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from yibao.core.generate import generate_claims
from yibao.core.grouping import group_drg

_spec = importlib.util.spec_from_file_location(
    "yibao_bench_peers_provider", Path(__file__).resolve().parent / "peers_provider.py")
pp = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = pp  # dataclasses need the module registered
_spec.loader.exec_module(pp)

HOSPITAL_COLUMNS = ["fixmedins_code", "claims", "points", "value", "psn_part_amt", "hifp_pay"]


def _input(n: int):
    claims = generate_claims(n, seed=7)
    return pp.provider_input(claims, group_drg(claims))


def test_duckdb_agrees_with_yibao_50k():
    """Same per-claim points and case classes, same per-hospital values and fund due to the fen."""
    table = _input(50_000)
    params = pp.make_params(table)
    y_scored, y_hosp = pp.settle_yibao(pp.points_plan(params), table)
    d_scored, d_hosp = pp.settle_duckdb(params, table)
    y_scored, d_scored = y_scored.sort_by("claim_id"), d_scored.sort_by("claim_id")
    assert y_scored.num_rows == d_scored.num_rows == 50_000
    assert y_scored["claim_id"].equals(d_scored["claim_id"])
    classes = set(y_scored["case_class"].to_pylist())
    assert {"normal", "high", "low", "ungrouped"} <= classes  # every branch is exercised
    assert pc.sum(pc.not_equal(y_scored["points"], d_scored["points"])).as_py() == 0
    assert y_scored["case_class"].equals(d_scored["case_class"])
    y_hosp = y_hosp.select(HOSPITAL_COLUMNS)
    assert y_hosp.num_rows > 50
    assert y_hosp.to_pylist() == d_hosp.to_pylist()
    # Σ value is F + P exactly (the largest remainder hands out every fen), P over the
    # valued claims only.
    f = params.budget - (params.budget * pp.RESERVE_SHARE + 500_000) // 1_000_000
    valued = pc.not_equal(y_scored["case_class"], "ungrouped")
    paid = table.sort_by("claim_id").filter(valued)["self_pay"]
    assert pc.sum(d_hosp["value"]).as_py() == f + pc.sum(paid).as_py()


@pytest.fixture(scope="session")
def provider_table(_claims_cache, claims, size):
    """The size's claims grouped, cut to the provider input (cached as Parquet once)."""
    path = _claims_cache["dir"] / f"provider_{size}.parquet"
    if not path.exists():
        pq.write_table(pp.provider_input(claims, group_drg(claims)), path)
    return pq.read_table(path)


@pytest.fixture(scope="session")
def provider_params(provider_table):
    return pp.make_params(provider_table)


def test_bench_provider_yibao(benchmark, provider_table, provider_params, size, timings):
    plan = pp.points_plan(provider_params)
    scored, hosp = benchmark.pedantic(pp.settle_yibao, args=(plan, provider_table),
                                      rounds=3, iterations=1, warmup_rounds=0)
    assert scored.num_rows == size
    mean = benchmark.stats.stats.mean
    timings[(size, "provider_yibao")] = mean
    timings[(size, "provider_yibao_hosp")] = hosp.select(HOSPITAL_COLUMNS).to_pylist()
    benchmark.extra_info.update(claims=size, claims_per_s=round(size / mean))


def test_bench_provider_duckdb(benchmark, provider_table, provider_params, size, timings):
    scored, hosp = benchmark.pedantic(pp.settle_duckdb, args=(provider_params, provider_table),
                                      rounds=3, iterations=1, warmup_rounds=0)
    assert scored.num_rows == size
    mean = benchmark.stats.stats.mean
    benchmark.extra_info.update(claims=size, claims_per_s=round(size / mean))
    if (size, "provider_yibao") in timings:
        assert hosp.to_pylist() == timings[(size, "provider_yibao_hosp")]
        yibao = timings[(size, "provider_yibao")]
        benchmark.extra_info["duckdb_over_yibao"] = round(mean / yibao, 2)
