"""CHS-DRG grouping throughput: the nogil kernel (group_drg) vs the per-claim reference.

Synthetic claims draw codes from the real lists (rule code sets, ZD_INFO, SS_INFO, MCC/CC)
with a fixed seed. Run:
  cd /work/main && /work/venv/bin/python -m pytest benchmarks/test_bench_grouping.py \
      --benchmark-only -q
"""
import numpy as np
import pyarrow as pa

from yibao.core.grouping import _drg
from yibao.core.grouping.drg import _claim_columns, _compiled_with_arrow, group_drg
from yibao.core.grouping.reference import group_claim
from yibao.core.grouping.tables import load_tables

N_KERNEL = 200_000
N_PYTHON = 2_000


def synthetic_claims(n: int, seed: int = 7) -> pa.Table:
    t = load_tables()
    rng = np.random.default_rng(seed)
    pdx_pool = pa.array(sorted({c for s in t.dx_sets.values() for c in s}))
    sdx_pool = pa.array(sorted(t.diagnoses))
    proc_pool = pa.array(sorted({c for s in t.proc_sets.values() for c in s}))

    def lists(pool, max_len):
        lens = rng.integers(0, max_len + 1, n)
        offsets = np.concatenate([[0], np.cumsum(lens)]).astype(np.int32)
        values = pool.take(pa.array(rng.integers(0, len(pool), offsets[-1])))
        return pa.ListArray.from_arrays(pa.array(offsets), values)

    return pa.table({
        "principal_dx": pdx_pool.take(pa.array(rng.integers(0, len(pdx_pool), n))),
        "secondary_dx": lists(sdx_pool, 6),
        "procedures": lists(proc_pool, 3),
        "sex": pa.array(rng.integers(1, 3, n).astype(np.int8)),
        "age": pa.array(rng.integers(0, 95, n).astype(np.int32)),
        "age_days": pa.array(rng.integers(0, 400, n).astype(np.int32)),
        "birth_weight": pa.array(rng.integers(800, 4500, n).astype(np.int32)),
    })


def test_bench_kernel(benchmark):
    table = synthetic_claims(N_KERNEL)
    group_drg(table.slice(0, 10))       # compile tables outside the timing
    out = benchmark(group_drg, table)
    assert out.num_rows == N_KERNEL
    benchmark.extra_info["claims"] = N_KERNEL
    benchmark.extra_info["claims_per_s"] = round(N_KERNEL / benchmark.stats.stats.mean)
    benchmark.extra_info["grouped_share"] = round(
        out.column("drg").null_count and 1 - out.column("drg").null_count / N_KERNEL, 3)


def test_bench_kernel_mapping(benchmark):
    """The code -> id step alone (Arrow columns -> the kernel's int arrays)."""
    table = synthetic_claims(N_KERNEL)
    comp = _compiled_with_arrow(None, None)
    benchmark(_claim_columns, table, comp)
    benchmark.extra_info["claims_per_s"] = round(N_KERNEL / benchmark.stats.stats.mean)


def test_bench_kernel_loop(benchmark):
    """The nogil claim loop alone (``_drg.run`` on already mapped ids)."""
    table = synthetic_claims(N_KERNEL)
    comp = _compiled_with_arrow(None, None)
    cols = _claim_columns(table, comp)
    benchmark(_drg.run, comp, cols)
    benchmark.extra_info["claims_per_s"] = round(N_KERNEL / benchmark.stats.stats.mean)


def test_bench_reference(benchmark):
    rows = synthetic_claims(N_PYTHON).to_pylist()
    tables = load_tables()
    out = benchmark.pedantic(lambda: [group_claim(r, tables) for r in rows],
                             rounds=3, iterations=1)
    assert len(out) == N_PYTHON
    benchmark.extra_info["claims"] = N_PYTHON
    benchmark.extra_info["claims_per_s"] = round(N_PYTHON / benchmark.stats.stats.mean)
