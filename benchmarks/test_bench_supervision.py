"""Supervision cost: the flags of a whole batch as a ratio to its settlement, same run.

Jinhua (five flag rules over CHS-DRG groups, one with `effect review`) on generated claims:
``engine.settle`` (benefits, grouping, points) and then ``supervision.evaluate`` (flags and
hospital indicators) over the same in-memory batch, given the settlement's input row of each
result (``BatchResult.rows``) as ``yibao explain`` gives it. Target: flags add at most a third to
settlement time (ratio ≤ 0.33). The documented command is 5M claims:

  YIBAO_BENCH_SUPERVISION_CLAIMS=5000000 .venv/bin/python -m pytest \\
      benchmarks/test_bench_supervision.py --benchmark-only -q -s

(default 1,000,000 claims, for a shared machine). benchmarks/README.md has the measured ratio.
"""
from __future__ import annotations

import os
import time

from yibao.core import supervision
from yibao.core.engine import settle
from yibao.core.generate import generate_claims
from yibao.dsl.compiler import compile_policy

CLAIMS = int(os.environ.get("YIBAO_BENCH_SUPERVISION_CLAIMS", 1_000_000))


def test_bench_supervision_vs_settlement(benchmark):
    plan = compile_policy("city_configs/jinhua")
    claims = generate_claims(CLAIMS, 7)
    start = time.perf_counter()
    batch = settle(plan, claims)
    settle_s = time.perf_counter() - start
    # the settlement's input row of each result spares looking up every claim id
    found = benchmark.pedantic(supervision.evaluate, (plan, claims, batch.results),
                               {"rows": batch.rows}, rounds=1, iterations=1)
    flags_s = benchmark.stats.stats.mean
    ratio = flags_s / settle_s
    benchmark.extra_info.update(claims=CLAIMS, settle_s=round(settle_s, 2),
                                flags_s=round(flags_s, 2), ratio=round(ratio, 3),
                                flags=found.flags.num_rows)
    print(f"\n{CLAIMS:,} claims: settle {settle_s:.2f} s, flags {flags_s:.2f} s "
          f"({found.flags.num_rows:,} flags), ratio {ratio:.3f}")
    assert found.flags.num_rows > 0
