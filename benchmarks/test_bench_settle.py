"""Settlement throughput: yibao against the alternatives a city team would write (peers.py).

Same machine, same run, same generated claims (``generate_claims(n, seed=7)``):
  * in memory: Arrow table in, result table out — yibao ``settle``, DuckDB SQL windows, Polars
    windows, plain Python (a 200k sample, throughput extrapolated);
  * Parquet file to Parquet file — yibao (pyarrow.parquet read, settle, write) against DuckDB
    ``COPY (SELECT … FROM read_parquet(…)) TO … (FORMAT parquet)``;
  * the kernel loop alone (``Program.run(order)`` on prepared inputs), in claims/s;
  * peak memory of each engine, each in a fresh subprocess, against the input columns' bytes.
Ratios to yibao go into ``benchmark.extra_info``. Run (README.md has the numbers):

  cd /work/main && YIBAO_BENCH_SIZES=1000000,5000000 /work/venv/bin/python -m pytest \
      benchmarks/test_bench_settle.py -q --benchmark-columns=mean,min,max,rounds \
      --benchmark-sort=name --benchmark-json=/tmp/bench_settle.json
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from yibao.core.arrow_io import REQUIRED
from yibao.core.engine import lower_batch, settle
from yibao.core.generate import generate_claims

PYTHON_SAMPLE = 200_000
MONEY = ["basic_inpatient", "basic_outpatient", "critical", "assistance", "self_pay"]


def _rounds(size: int) -> int:
    return 3 if size <= 1_000_000 else 2


def _run(benchmark, fn, size, timings, name, rounds=None):
    out = benchmark.pedantic(fn, rounds=rounds or _rounds(size), iterations=1, warmup_rounds=0)
    mean = benchmark.stats.stats.mean
    timings[(size, name)] = mean
    benchmark.extra_info["claims"] = size
    benchmark.extra_info["claims_per_s"] = round(size / mean)
    return out


def _ratio_to_yibao(benchmark, timings, size, name, yibao_name):
    """extra_info[yibao_speedup] = this peer's time / yibao's time (same size, same run)."""
    if (size, yibao_name) in timings:
        ratio = timings[(size, name)] / timings[(size, yibao_name)]
        benchmark.extra_info["yibao_speedup"] = round(ratio, 2)


def input_columns(plan) -> list[str]:
    """The claim columns the plan reads (the memory target is relative to their bytes)."""
    names = {c.name for c in plan.columns} | set(REQUIRED) | {"in_scope", "self_first"}
    names |= {k.column for k in plan.keys()}
    return sorted(names)


# -- in memory ------------------------------------------------------------------------------

def test_memory_yibao(benchmark, plan, claims, size, timings):
    settle(plan, claims.slice(0, 1000))  # compile lookup tables outside the timing
    out = _run(benchmark, lambda: settle(plan, claims).results, size, timings, "yibao")
    assert out.num_rows == size


@pytest.mark.parametrize("peer", ["duckdb", "polars"])
def test_memory_peer(benchmark, peers, claims, size, timings, peer):
    fn = getattr(peers, f"settle_{peer}")
    out = _run(benchmark, lambda: fn(claims), size, timings, peer)
    assert out.num_rows == size
    _ratio_to_yibao(benchmark, timings, size, peer, "yibao")


def test_memory_python(benchmark, peers, claims, size, timings):
    """Plain Python on the first PYTHON_SAMPLE claims; claims_per_s is extrapolated from it."""
    sample = claims.slice(0, min(size, PYTHON_SAMPLE))
    out = benchmark.pedantic(lambda: peers.settle_python(sample), rounds=1, iterations=1)
    per_claim = benchmark.stats.stats.mean / sample.num_rows
    timings[(size, "python")] = per_claim * size
    benchmark.extra_info.update(claims=sample.num_rows, extrapolated_to=size,
                                claims_per_s=round(1 / per_claim),
                                extrapolated_seconds=round(per_claim * size, 1))
    _ratio_to_yibao(benchmark, timings, size, "python", "yibao")
    assert out.num_rows == sample.num_rows


# -- Parquet file to Parquet file -------------------------------------------------------------

def test_parquet_yibao(benchmark, plan, claims_parquet, size, timings, tmp_path):
    cols = input_columns(plan) + ["hospital_id"]  # results carry it, as the DuckDB peer's do
    target = tmp_path / "yibao_out.parquet"

    def run():
        pq.write_table(settle(plan, pq.read_table(claims_parquet, columns=cols)).results, target)

    _run(benchmark, run, size, timings, "parquet_yibao")
    assert pq.read_metadata(target).num_rows == size


def test_parquet_duckdb(benchmark, peers, claims_parquet, size, timings, tmp_path):
    import duckdb

    target = tmp_path / "duckdb_out.parquet"
    sql = peers._duckdb_sql().replace("FROM claims", "FROM claims_rn")

    def run():
        con = duckdb.connect()
        try:
            con.execute("SET threads TO 2")
            con.execute(f"CREATE TEMP VIEW claims_rn AS SELECT *, row_number() OVER () AS rn "
                        f"FROM read_parquet('{claims_parquet}')")
            con.execute(f"COPY ({sql}) TO '{target}' (FORMAT parquet)")
        finally:
            con.close()

    _run(benchmark, run, size, timings, "parquet_duckdb")
    _ratio_to_yibao(benchmark, timings, size, "parquet_duckdb", "parquet_yibao")
    assert pq.read_metadata(target).num_rows == size


# -- the kernel loop alone ----------------------------------------------------------------------

def test_kernel_loop(benchmark, plan, claims, size, timings):
    low = lower_batch(plan, claims)
    _run(benchmark, lambda: low.program.run(low.kernel_order), size, timings, "kernel_loop",
         rounds=5)
    benchmark.extra_info["claims_per_s_per_core"] = benchmark.extra_info["claims_per_s"]
    if (size, "yibao") in timings:
        benchmark.extra_info["share_of_settle"] = round(
            timings[(size, "kernel_loop")] / timings[(size, "yibao")], 3)


# -- peak memory, one fresh process per engine ---------------------------------------------------

@pytest.mark.parametrize("engine", ["yibao", "duckdb", "polars"])
def test_peak_memory(benchmark, plan, claims_parquet, size, engine):
    """Peak RSS growth while settling (VmHWM after − VmRSS before, /proc/self/status) against
    the bytes of the input columns the plan reads, each engine alone in a subprocess."""
    report = benchmark.pedantic(_measure_in_subprocess, args=(engine, claims_parquet),
                                rounds=1, iterations=1)
    benchmark.extra_info.update(report)
    assert report["claims"] == size


def _measure_in_subprocess(engine: str, parquet: Path) -> dict:
    out = subprocess.run([sys.executable, __file__, "--peak-memory", engine, str(parquet)],
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def _peak_memory_main(engine: str, parquet: str) -> None:
    from yibao.dsl.compiler import compile_policy
    from conftest import REPO, load_peers

    plan = compile_policy(str(REPO / "city_configs" / "reference"))
    # hospital_id too: the results carry it, and the peers write it (as in the Parquet rows)
    table = pq.read_table(parquet, columns=input_columns(plan) + ["hospital_id"])
    fn = {"yibao": lambda t: settle(plan, t).results}.get(engine) or getattr(load_peers(), f"settle_{engine}")
    fn(table.slice(0, 1000))  # imports and one-off set-up outside the measurement
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
    before = _status_kib("VmRSS")
    out = fn(table)
    peak = _status_kib("VmHWM")
    input_bytes = table.nbytes
    print(json.dumps({"engine": engine, "claims": table.num_rows, "input_mib": round(input_bytes / 2**20, 1),
                      "rss_before_mib": round(before / 1024, 1), "peak_growth_mib": round((peak - before) / 1024, 1),
                      "peak_over_input": round((peak - before) * 1024 / input_bytes, 2),
                      "output_rows": out.num_rows}))


# -- correctness: every peer agrees with yibao -------------------------------------------------

def _stable_claims(claims: pa.Table) -> pa.Array:
    """claim_id of person-years in which low_income and tier never change (peers.py: the window
    forms are exact there)."""
    t = claims.select(["claim_id", "person_id", "discharge_date", "low_income", "tier"])
    t = t.append_column("yr", pc.year(t["discharge_date"])).append_column(
        "attr", pc.binary_join_element_wise(pc.cast(t["low_income"], pa.string()),
                                            pc.cast(t["tier"], pa.string()), "|"))
    counts = t.group_by(["person_id", "yr"]).aggregate([("attr", "count_distinct")])
    stable = counts.filter(pc.equal(counts["attr_count_distinct"], 1)).select(["person_id", "yr"])
    return t.join(stable, ["person_id", "yr"], join_type="inner")["claim_id"].combine_chunks()


def test_peers_agree_with_yibao(plan, peers):
    claims = generate_claims(100_000, seed=7)
    want = settle(plan, claims).results.select(["claim_id", *MONEY]).sort_by("claim_id")
    assert want.num_rows == claims.num_rows
    stable = _stable_claims(claims)
    assert 0.9 * claims.num_rows < len(stable) < claims.num_rows  # some persons do change
    keep = pc.is_in(want["claim_id"], value_set=stable)
    for name in ("python", "duckdb", "polars"):
        got = getattr(peers, f"settle_{name}")(claims).select(["claim_id", *MONEY]).sort_by("claim_id")
        if name == "python":  # exact on every claim, attributes changing mid-year included
            assert got.equals(want), name
        else:
            assert got.filter(keep).equals(want.filter(keep)), name


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--peak-memory":
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        _peak_memory_main(sys.argv[2], sys.argv[3])
