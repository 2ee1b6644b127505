"""The kernel loop alone (issue 14's "kernel loop" row), in CPU time so a loaded machine
still compares: ``Program.run`` on the reference policy's program for N claims (default 2M,
``benchmarks/table.py``'s input: ``generate_claims`` in 1M chunks, ids prefixed by chunk), in
date order (what ``table.row_kernel`` times) and in a run's (bucket, date, claim id) order
(what ``yibao settle`` walks). Run it with each checkout's python, alternating, for an A/B:

    python benchmarks/kernel_loop.py [N] [ROUNDS]

Prints one line per order: best CPU seconds and claims/s. Needs a yibao whose ``lower_batch``
takes ``lead`` (k14) for the run order; an older one prints the date order only."""
from __future__ import annotations

import inspect
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

sys.path.insert(0, str(Path(__file__).resolve().parent))
import installed  # noqa: E402,F401  (bytecode compiled, as installed)

REPO = Path(__file__).resolve().parent.parent


def claims(n: int) -> pa.Table:
    from yibao.core.generate import generate_claims
    parts = []
    for k in range((n + 999_999) // 1_000_000):
        t = generate_claims(min(1_000_000, n - k * 1_000_000), seed=k)
        ids = pc.binary_join_element_wise(f"K{k:03d}", t.column("claim_id"), "")
        parts.append(t.set_column(0, "claim_id", ids))
    return pa.concat_tables(parts)


def best_cpu(fn, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.process_time()
        fn()
        times.append(time.process_time() - start)
    return min(times)


def main() -> None:
    from yibao.core.engine import lower_batch
    from yibao.core.partition import buckets
    from yibao.core.piece import bucket_plan
    from yibao.dsl.compiler import compile_policy
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2_000_000
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    table = claims(n)
    plan = compile_policy(str(REPO / "city_configs" / "reference"))
    lows = {"date order": lower_batch(plan, table)}
    if "lead" in inspect.signature(lower_batch).parameters:
        lows["run order"] = lower_batch(plan, table, lead=buckets(bucket_plan(plan), table))
    import yibao.core
    checkout = Path(yibao.core.__file__).resolve().parents[1].name  # whose yibao is timed
    for name, low in lows.items():
        s = best_cpu(lambda: low.program.run(low.kernel_order), rounds)
        print(f"{checkout} {name}: {s:.3f} s CPU, {n / s / 1e6:.1f} M claims/s", flush=True)


if __name__ == "__main__":
    main()
