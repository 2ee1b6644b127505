"""Issue 14's target table in one run: every row measured with its peer in the same run, peers
and yibao alternating, the best of ``ROUNDS`` each; prints a Markdown table (and JSON with
``--json``). Run through ``benchmarks/run_table.sh`` (about 10 minutes on 2 cores at the
default sizes: ``YIBAO_TABLE_CLAIMS`` = 2M for the whole-process and in-memory rows,
``YIBAO_TABLE_PROVIDER`` = 1M, ``YIBAO_TABLE_MEMORY`` = 2M for the peak-memory row).

The whole-process and provider rows also carry their I/O floor (``benchmarks/floors.py``):
a fresh process that only reads the columns the run reads and writes the files the run
wrote, with the same settings. DuckDB's time over that floor is the best ratio any
pyarrow-based command can reach on this machine.

Rows whose target needs more than ten minutes (5M peak memory, 50M partitioned) are measured
at the sizes above and say so; the 50M run is ``benchmarks/test_bench_scale.py`` with
``YIBAO_BENCH_50M=1`` (about an hour).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
POLICY = REPO / "city_configs" / "reference"
sys.path.insert(0, str(BENCH))
import installed  # noqa: E402,F401  (commands timed with bytecode, as installed)
from floors import io_floor, parquet_files, settle_columns  # noqa: E402

ROUNDS = int(os.environ.get("YIBAO_TABLE_ROUNDS", "2"))
CLAIMS = int(os.environ.get("YIBAO_TABLE_CLAIMS", "2000000"))
PROVIDER = int(os.environ.get("YIBAO_TABLE_PROVIDER", "1000000"))
MEMORY = int(os.environ.get("YIBAO_TABLE_MEMORY", "2000000"))
# The whole-process rows move by ±15 % between runs at 2M on 2 cores: more rounds for them.
WHOLE_ROUNDS = int(os.environ.get("YIBAO_TABLE_WHOLE_ROUNDS", "4"))

DUCKDB_SCRIPT = """
import sys, duckdb
sys.path.insert(0, {bench!r})
from peers import _duckdb_sql
con = duckdb.connect()
con.execute("SET threads TO 2")
con.execute("CREATE TEMP VIEW claims_rn AS SELECT *, row_number() OVER () AS rn "
            "FROM read_parquet('{src}/*.parquet')")
sql = _duckdb_sql().replace("FROM claims", "FROM claims_rn")
con.execute(f"COPY ({{sql}}) TO '{out}' (FORMAT parquet)")
"""


def best(fn, rounds: int = ROUNDS) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def alternate(a, b, rounds: int = ROUNDS) -> tuple:
    """Best seconds of ``a`` and of ``b``, run a, b, a, b ... (shared-machine noise falls on
    both)."""
    ta, tb = [], []
    for _ in range(rounds):
        ta.append(best(a, 1))
        tb.append(best(b, 1))
    return min(ta), min(tb)


def run(cmd: list) -> None:
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode not in (0, 1):
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed:\n{done.stderr[-2000:]}")


def write_input(folder: Path, n: int) -> Path:
    """``generate_claims`` in chunks of 1M (seed = chunk), ids prefixed by the chunk
    (benchmarks/test_bench_scale.py's layout)."""
    from yibao.core.generate import generate_claims, write_claims
    folder.mkdir(parents=True, exist_ok=True)
    for k in range((n + 999_999) // 1_000_000):
        path = folder / f"claims-{k:03d}.parquet"
        if not path.exists():
            t = generate_claims(min(1_000_000, n - k * 1_000_000), seed=k)
            ids = pc.binary_join_element_wise(f"K{k:03d}", t.column("claim_id"), "")
            write_claims(t.set_column(0, "claim_id", ids), path)
    return folder


def yibao_cmd(src: Path, out: Path, *extra) -> list:
    return [sys.executable, "-m", "yibao.dsl.cli", "settle", str(POLICY), str(src),
            "--out", str(out), "--overwrite", "--no-progress", *extra]


def row_whole_process(tmp: Path, src: Path) -> dict:
    script = tmp / "duckdb_settle.py"
    script.write_text(DUCKDB_SCRIPT.format(bench=str(BENCH), src=src, out=tmp / "duck.parquet"))
    y, d = alternate(lambda: run(yibao_cmd(src, tmp / "y_out")),
                     lambda: run([sys.executable, str(script)]), rounds=WHOLE_ROUNDS)
    floor = io_floor(parquet_files(src), settle_columns(POLICY), parquet_files(tmp / "y_out"))
    return {"yibao_s": y, "duckdb_s": d, "ratio": d / y, "floor": floor,
            "floor_ratio": d / floor["seconds"]}


def row_memory(table) -> dict:
    import peers
    from yibao.core.engine import settle
    from yibao.dsl.compiler import compile_policy
    plan = compile_policy(str(POLICY))
    settle(plan, table.slice(0, 1000))
    y = best(lambda: settle(plan, table))
    d = best(lambda: peers.settle_duckdb(table))
    p = best(lambda: peers.settle_polars(table))
    return {"yibao_s": y, "duckdb_s": d, "polars_s": p, "ratio_duckdb": d / y,
            "ratio_polars": p / y}


def row_kernel(table) -> dict:
    """The kernel loop alone over 2M claims, in date order (``engine.settle``'s order) and in
    the order a ``yibao settle`` run walks (led by the run's buckets, key ids renumbered
    along it: ``lower_batch(lead=)``)."""
    from yibao.core.engine import lower_batch
    from yibao.core.partition import buckets
    from yibao.core.piece import bucket_plan
    from yibao.dsl.compiler import compile_policy
    plan = compile_policy(str(POLICY))
    low = lower_batch(plan, table)
    s = best(lambda: low.program.run(low.kernel_order), 3)
    run = lower_batch(plan, table, lead=buckets(bucket_plan(plan), table))
    r = best(lambda: run.program.run(run.kernel_order), 3)
    return {"seconds": s, "claims_per_s": table.num_rows / s,
            "run_order_seconds": r, "run_order_claims_per_s": table.num_rows / r}


def row_provider(tmp: Path, n: int) -> dict:
    """Issue 14's provider scenario, whole process: `yibao settle` of one DRG pool on a
    600-row decision-table grouper vs a DuckDB script (benchmarks/provider_process.py)."""
    import provider_process
    folder = tmp / "provider"
    row = provider_process.row(folder, n, ROUNDS)
    floor = io_floor([folder / "claims.parquet"], settle_columns(folder / "city"),
                     parquet_files(folder / "y"))
    return {**row, "floor": floor, "floor_ratio": row["duckdb_s"] / floor["seconds"]}


def row_decision_table() -> dict:
    import importlib.util
    from yibao.core.grouping.table import analyse, group_table
    spec = importlib.util.spec_from_file_location(
        "dip_tables", REPO / "tests" / "grouping" / "test_table_index.py")
    dip = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(dip)
    dip_claims, table = dip.dip_claims, dip.dip_sized_table()
    compile_s = best(lambda: analyse(table))
    claims = dip_claims(1_000_000)
    group_s = best(lambda: group_table(table, claims))
    return {"compile_s": compile_s, "group_s": group_s, "claims_per_s": 1e6 / group_s}


def row_peak_memory(tmp: Path) -> dict:
    from yibao.core.generate import generate_claims, write_claims
    path = tmp / "peak.parquet"
    write_claims(generate_claims(MEMORY, seed=7), path)
    out = {}
    for engine in ("yibao", "duckdb"):
        done = subprocess.run([sys.executable, str(BENCH / "test_bench_settle.py"),
                               "--peak-memory", engine, str(path)], capture_output=True,
                              text=True, cwd=str(BENCH), check=True)
        out[engine] = json.loads(done.stdout.strip().splitlines()[-1])["peak_over_input"]
    return out


def row_check() -> dict:
    check = [sys.executable, "-m", "yibao.dsl.cli", "check", str(REPO / "city_configs" /
                                                                 "shanghai")]
    c, i = alternate(lambda: run(check), lambda: run([sys.executable, "-c", "import pyarrow"]),
                     rounds=3)
    return {"check_s": c, "import_pyarrow_s": i, "ratio": c / i}


def row_partitioned(tmp: Path, src: Path) -> dict:
    m, p = alternate(lambda: run(yibao_cmd(src, tmp / "m_out")),
                     lambda: run(yibao_cmd(src, tmp / "p_out", "--partitions", "8")),
                     rounds=WHOLE_ROUNDS)
    return {"memory_s": m, "partitioned_s": p, "per_claim_ratio": p / m}


def main() -> None:
    results = {}
    with tempfile.TemporaryDirectory(prefix="yibao-table-") as name:
        tmp = Path(name)
        src = write_input(tmp / "in", CLAIMS)
        table = pq.read_table(src)
        steps = [("whole_process", lambda: row_whole_process(tmp, src)),
                 ("memory", lambda: row_memory(table)),
                 ("kernel", lambda: row_kernel(table)),
                 ("provider", lambda: row_provider(tmp, PROVIDER)),
                 ("decision_table", row_decision_table),
                 ("peak_memory", lambda: row_peak_memory(tmp)),
                 ("check", row_check),
                 ("partitioned", lambda: row_partitioned(tmp, src))]
        chosen = os.environ.get("YIBAO_TABLE_ROWS")  # e.g. "whole_process,provider"
        if chosen:
            steps = [(k, step) for k, step in steps if k in chosen.split(",")]
        for key, step in steps:
            start = time.perf_counter()
            results[key] = step()
            print(f"{key}: {results[key]} ({time.perf_counter() - start:.0f} s)",
                  file=sys.stderr, flush=True)
    print(markdown(results) if len(results) == len(ROW_NAMES) else
          json.dumps(results, indent=1))
    if "--json" in sys.argv:
        print(json.dumps(results, indent=1))


ROW_NAMES = ("whole_process", "memory", "kernel", "provider", "decision_table", "peak_memory",
             "check", "partitioned")


def reproduce(row: str) -> str:
    """The command that measures one row alone, at this run's size."""
    size = {"whole_process": f"YIBAO_TABLE_CLAIMS={CLAIMS} ",
            "memory": f"YIBAO_TABLE_CLAIMS={CLAIMS} ",
            "partitioned": f"YIBAO_TABLE_CLAIMS={CLAIMS} ",
            "provider": f"YIBAO_TABLE_PROVIDER={PROVIDER} ",
            "peak_memory": f"YIBAO_TABLE_MEMORY={MEMORY} "}.get(row, "")
    return f"`{size}YIBAO_TABLE_ROWS={row} bash benchmarks/run_table.sh`"


def markdown(r: dict) -> str:
    def f(x, d=2):
        return f"{x:.{d}f}"

    def floor(row):
        fl = row["floor"]
        return (f"I/O floor {f(fl['seconds'])} s (start {f(fl['start_s'])}, read "
                f"{f(fl['read_s'])}, write {f(fl['write_s'])}): at most "
                f"{f(row['floor_ratio'])}× reachable")
    w, m, k = r["whole_process"], r["memory"], r["kernel"]
    p, t, pm, c, pt = (r["provider"], r["decision_table"], r["peak_memory"], r["check"],
                       r["partitioned"])
    rows = [
        ("`yibao settle` whole process, Parquet → Parquet, "
         f"{CLAIMS / 1e6:g}M, vs DuckDB script", f"{f(w['ratio'])}× ({f(w['yibao_s'])} s vs "
         f"{f(w['duckdb_s'])} s); {floor(w)}", "≥ 3×"),
        (f"in memory, reference policy, {CLAIMS / 1e6:g}M, vs DuckDB windows / Polars",
         f"{f(m['ratio_duckdb'])}× / {f(m['ratio_polars'])}× (yibao {f(m['yibao_s'])} s)",
         "≥ 10× / ≥ 20×"),
        (f"provider settlement, one DRG pool on a {p['rows']}-row decision table, "
         f"{PROVIDER / 1e6:g}M, whole process vs DuckDB script",
         f"{f(p['ratio'])}× ({f(p['yibao_s'])} s vs {f(p['duckdb_s'])} s); {floor(p)}",
         "≥ 3×"),
        ("decision table of 10,000 rows: compile / group",
         f"{f(t['compile_s'])} s / {t['claims_per_s'] / 1e6:.2f} M claims/s",
         "≤ 1 s / ≥ 2 M claims/s"),
        ("kernel loop", f"{k['claims_per_s'] / 1e6:.1f} M claims/s in date order, "
         f"{k['run_order_claims_per_s'] / 1e6:.1f} M in a run's order", "≥ 20 M claims/s/core"),
        (f"peak memory growth, {MEMORY / 1e6:g}M, vs input columns",
         f"{f(pm['yibao'])}× (DuckDB {f(pm['duckdb'])}×)", "≤ 2× (at 5M)"),
        ("`yibao check` of city_configs/shanghai, whole process",
         f"{f(c['ratio'])}× `import pyarrow` ({f(c['check_s'])} s vs "
         f"{f(c['import_pyarrow_s'])} s)", "≤ 2×"),
        (f"partitioned (8) vs in memory, per claim, {CLAIMS / 1e6:g}M",
         f"{f(pt['per_claim_ratio'])}× ({f(pt['partitioned_s'])} s vs "
         f"{f(pt['memory_s'])} s)", "≤ 1× (at 50M)"),
    ]
    out = ["| measure | measured | target | reproduce |", "|---|---|---|---|"]
    order = ("whole_process", "memory", "provider", "decision_table", "kernel", "peak_memory",
             "check", "partitioned")
    out += [f"| {a} | {b} | {c} | {reproduce(key)} |" for (a, b, c), key in zip(rows, order)]
    return "\n".join(out)


if __name__ == "__main__":
    main()
