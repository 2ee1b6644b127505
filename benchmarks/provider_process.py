"""Issue 14's provider scenario, whole process: one DRG pool on a ~600-row decision-table
grouper, N claims Parquet → `yibao settle` (a fresh process) against a DuckDB script doing the
same grouping, points and point value Parquet → Parquet.

``build(folder, n)`` writes everything both sides read:

* ``claims.parquet``: ``generate_claims(n, seed=7)`` with every claim an inpatient stay (so
  every claim is in the pool and the benefit layer is one ratio on all of them);
* ``city/``: ``policy.yb`` (one layer ``basic``: 80 % of in_scope; one pool ``drg`` grouped by
  the decision table ``dt``), ``dt.csv`` and ``points.csv``;
* ``dt_sql.parquet``: the same table as the DuckDB script reads it (one row per category).

The decision table (plausible DIP/DRG-like rows from the generated claims' real ICD-10 codes):
the 200 commonest 3-character principal-diagnosis categories, each with three rows in
first-match order — ``<cat>1`` the category with a procedure of its commonest 2-digit
procedure chapter (``proc_any 36*``), ``<cat>2`` the category at age ≥ 65, ``<cat>3`` the
category — and default ``OTHER`` (no base points: ``ungrouped``, 0 points). Every 20th group
gets no base points either. Base points are the group's mean cost / 100 yuan × noise;
``avg_cost`` the group's mean cost. The pool: coefficient 0.85 / 1.0 / 1.2 by hospital level,
the Zhejiang high-outlier bands, low outlier 0.4, ×1.1 for a TCM hospital then ×1.05 at age
≥ 80 (each rounded half-up), reserve 2 %, point value (budget + patient_paid) / points.

The DuckDB script groups by one equi-join on the category (``left(principal_dx, 3)``) and a
CASE over the three rows — the fastest exact SQL for this table shape — then runs the claim
and hospital SQL of ``peers_provider.py`` and writes the per-claim and per-hospital Parquet.
``agree(folder)`` checks both sides give the same groups, points and hospital values.
"""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

BENCH = Path(__file__).resolve().parent
CATEGORIES = 200          # x 3 rows = a 600-row table
OLD_AGE, TCM, OLD = 80, "1.1", "1.05"
LEVEL_K = {1: "0.85", 2: "1.0", 3: "1.2"}

POLICY = """\
policy "DRG点数法基准" {{
  region "bench"
  effective 2024-01-01 to 2024-12-31
}}

attribute age: int

layer basic "基本医保住院" {{
  applies when setting = inpatient
  base in_scope
  ratio 80%
}}

grouper dt "决策表分组" from "dt.csv" default "OTHER"

pool drg "住院DRG" {{
  applies when setting = inpatient
  group by dt
  budget {budget_yuan} yuan
  base points from "points.csv"
  coefficient by hospital_level {{ 1: {k1}, 2: {k2}, 3: {k3} }}
  high outlier 3 when points <= 100, 2 when points <= 200, 1.5 otherwise
  low outlier 0.4
  adjust tcm_institution {tcm} when hospital_tcm
  adjust old_age {old} when age >= {old_age}
  point value (budget + patient_paid) / points
  reserve 2%
}}
"""

DUCKDB_SCRIPT = """\
import sys, duckdb
sys.path.insert(0, {bench!r})
import peers_provider as pp
con = duckdb.connect()
con.execute("SET threads TO 2")
con.execute("CREATE MACRO rdiv(n, d) AS (CAST(n AS HUGEINT) * 2 + d) // (2 * CAST(d AS HUGEINT))")
con.execute("CREATE TEMP TABLE base AS SELECT * FROM read_parquet('{folder}/base.parquet')")
con.execute("CREATE TEMP TABLE coef AS SELECT * FROM read_parquet('{folder}/coef.parquet')")
# grouping: one equi-join on the category, the three rows of a category as a CASE
con.execute('''CREATE TEMP VIEW claims AS
SELECT c.claim_id, c.hospital_id, c.hospital_level, c.total, c.hospital_tcm, c.age,
       c.total - rdiv(CAST(c.in_scope AS HUGEINT) * 4, 5) AS self_pay,
       CASE WHEN t.cat IS NULL THEN 'OTHER'
            WHEN len(list_filter(c.procedures, lambda p: starts_with(p, t.proc))) > 0 THEN t.g1
            WHEN c.age >= 65 THEN t.g2
            ELSE t.g3 END AS drg
FROM read_parquet('{folder}/claims.parquet') c
LEFT JOIN read_parquet('{folder}/dt_sql.parquet') t ON t.cat = left(c.principal_dx, 3)''')
con.execute("CREATE TEMP TABLE pts AS " + pp.claim_sql())
con.execute("COPY (SELECT claim_id, case_class, points, self_pay FROM pts) "
            "TO '{out}/claims.parquet' (FORMAT parquet)")
con.execute(f"COPY ({{pp.hospital_sql({budget})}}) TO '{out}/hospitals.parquet' (FORMAT parquet)")
"""


def _inpatient_claims(n: int) -> pa.Table:
    from yibao.core.generate import generate_claims
    claims = generate_claims(n, seed=7)
    setting = claims.column("setting")
    inpatient = pa.repeat(pa.scalar("inpatient", setting.type.value_type
                                    if pa.types.is_dictionary(setting.type) else setting.type),
                          n)
    if pa.types.is_dictionary(setting.type):
        inpatient = inpatient.dictionary_encode().cast(setting.type)
    return claims.set_column(claims.schema.get_field_index("setting"), "setting", inpatient)


def _commonest(values: pa.Array, k: int) -> list:
    counts = pc.value_counts(values.drop_null())
    order = np.lexsort((np.array(counts.field("values").to_pylist(), dtype=object),
                        -counts.field("counts").to_numpy()))
    return [counts.field("values")[int(i)].as_py() for i in order[:k]]


def _table_rows(claims: pa.Table) -> list:
    """[(category, procedure chapter, g1, g2, g3)] for the commonest categories."""
    cats = pc.utf8_slice_codeunits(claims.column("principal_dx"), 0, 3)
    procs = pc.list_flatten(claims.column("procedures"))
    chapters = _commonest(pc.utf8_slice_codeunits(procs, 0, 2), 40)
    rows = []
    for i, cat in enumerate(_commonest(cats, CATEGORIES)):
        rows.append((cat, chapters[i % len(chapters)], f"{cat}1", f"{cat}2", f"{cat}3"))
    return rows


def _write_dt(city: Path, rows: list) -> None:
    lines = ["group,label,dx_prefix,proc_any,age_lo"]
    for cat, chapter, g1, g2, g3 in rows:
        lines += [f"{g1},{cat} 手术,{cat},{chapter}*,", f"{g2},{cat} 高龄,{cat},,65",
                  f"{g3},{cat},{cat},,"]
    (city / "dt.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")


def _group_costs(claims: pa.Table, grouped: pa.Array) -> list:
    """[(group, mean total fen)] of the groups the claims fall in, sorted by group."""
    t = pa.table({"g": grouped, "total": claims.column("total")})
    sums = t.group_by("g").aggregate([("total", "sum"), ("total", "count")]).sort_by("g")
    return [(g, s // c) for g, s, c in zip(sums["g"].to_pylist(), sums["total_sum"].to_pylist(),
                                           sums["total_count"].to_pylist()) if g != "OTHER"]


def _write_points(folder: Path, city: Path, costs: list) -> list:
    """points.csv (yuan, 4-decimal points) and base.parquet / coef.parquet for the SQL, from
    the same integers. Returns the groups that have base points."""
    rng = np.random.default_rng(11)
    lines, base = ["group,points,avg_cost"], []
    for i, (g, avg_fen) in enumerate(costs):
        noise = rng.uniform(0.8, 1.2)
        if i % 20 == 19:
            continue
        b = max(1, int(avg_fen * 10_000 // 100 // 100 * noise))   # x10^4, ~1 point a 100 yuan
        lines.append(f"{g},{b // 10_000}.{b % 10_000:04d},{avg_fen // 100}.{avg_fen % 100:02d}")
        base.append((g, b, avg_fen))
    (city / "points.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    pq.write_table(pa.table({"drg": [g for g, _, _ in base],
                             "b": pa.array([b for _, b, _ in base], pa.int64()),
                             "avg": pa.array([a for _, _, a in base], pa.int64())}),
                   folder / "base.parquet")
    k = {lvl: int(float(v) * 1_000_000) for lvl, v in LEVEL_K.items()}
    coef = [(lvl, g, k[lvl]) for g, _, _ in base for lvl in k]
    pq.write_table(pa.table({"level": pa.array([c[0] for c in coef], pa.int8()),
                             "drg": [c[1] for c in coef],
                             "k": pa.array([c[2] for c in coef], pa.int64())}),
                   folder / "coef.parquet")
    return base


def build(folder: Path, n: int) -> dict:
    """Write the claims, the city and the SQL's tables under ``folder``; returns the budget
    (fen) and the table's row count."""
    from yibao.core.grouping.table import group_table, load_decision_table_csv
    folder.mkdir(parents=True, exist_ok=True)
    city = folder / "city"
    city.mkdir(exist_ok=True)
    claims = _inpatient_claims(n)
    pq.write_table(claims, folder / "claims.parquet")
    rows = _table_rows(claims)
    _write_dt(city, rows)
    pq.write_table(pa.table({"cat": [r[0] for r in rows], "proc": [r[1] for r in rows],
                             "g1": [r[2] for r in rows], "g2": [r[3] for r in rows],
                             "g3": [r[4] for r in rows]}), folder / "dt_sql.parquet")
    table = load_decision_table_csv(city / "dt.csv", "dt", default="OTHER")
    grouped = group_table(table, claims).column("dt")   # outside any timing
    _write_points(folder, city, _group_costs(claims, grouped))
    fund = pc.sum(pc.divide(pc.multiply(claims.column("in_scope"), 8), 10)).as_py()
    budget = fund * 95 // 100 // 100 * 100               # whole yuan
    (city / "policy.yb").write_text(POLICY.format(
        budget_yuan=budget // 100, k1=LEVEL_K[1], k2=LEVEL_K[2], k3=LEVEL_K[3], tcm=TCM,
        old=OLD, old_age=OLD_AGE), encoding="utf-8")
    return {"budget": budget, "rows": len(table.rows)}


def yibao_cmd(folder: Path, out: Path) -> list:
    return [sys.executable, "-m", "yibao.dsl.cli", "settle", str(folder / "city"),
            str(folder / "claims.parquet"), "--out", str(out), "--overwrite", "--no-progress"]


def duckdb_cmd(folder: Path, out: Path, budget: int) -> list:
    out.mkdir(parents=True, exist_ok=True)
    script = folder / "duckdb_provider.py"
    script.write_text(DUCKDB_SCRIPT.format(bench=str(BENCH), folder=folder, out=out,
                                           budget=budget), encoding="utf-8")
    return [sys.executable, str(script)]


def run(cmd: list) -> None:
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:  # no rejects here: exit 1 would be an error too
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed:\n{done.stderr[-3000:]}")


def agree(y_out: Path, d_out: Path) -> None:
    """Raise AssertionError unless yibao's and DuckDB's outputs agree: per-claim case class,
    points and patient-paid, and per-hospital claims, points, value and fund due."""
    y = pq.read_table(y_out / "claims.parquet",
                      columns=["claim_id", "case_class", "points", "self_pay"])
    d = pq.read_table(d_out / "claims.parquet")
    y, d = y.sort_by("claim_id"), d.sort_by("claim_id")
    for name in ("claim_id", "case_class", "points", "self_pay"):
        assert y[name].to_pylist() == d[name].to_pylist(), name
    yh = pq.read_table(y_out / "hospitals.parquet").sort_by("fixmedins_code")
    dh = pq.read_table(d_out / "hospitals.parquet").sort_by("fixmedins_code")
    for name in ("fixmedins_code", "claims", "points", "value", "psn_part_amt", "hifp_pay"):
        assert yh[name].to_pylist() == dh[name].to_pylist(), name


def parts(folder: Path, rounds: int = 3) -> dict:
    """CPU seconds (``process_time``, best of ``rounds``) of the provider parts of the run on
    ``folder`` (``build``'s): the per-claim columns (grouping, the points pass, the gather
    into settlement order) and the year (per-hospital sums by input row, the settlement).
    In this process, so start-up and I/O are not in it. Usage:
    ``python -c "import provider_process as p, pathlib; print(p.parts(pathlib.Path(F)))"``."""
    from yibao.core import provider
    from yibao.core.partition import buckets
    from yibao.core.piece import bucket_plan, settle_piece
    from yibao.dsl.compiler import compile_policy
    from yibao.plugins.manager import build_registry, make_plugin_manager
    registry = build_registry(make_plugin_manager())
    plan = compile_policy(str(folder / "city"), registry)
    claims = pq.read_table(folder / "claims.parquet")
    results, _, _, at = settle_piece(plan, claims, np.arange(claims.num_rows),
                                     buckets(bucket_plan(plan), claims), registry, None)
    order = np.random.default_rng(1).permutation(claims.num_rows)
    best = {"columns": float("inf"), "year": float("inf")}
    for _ in range(rounds):
        start = time.process_time()
        provider.claim_columns(plan, claims, order=order)
        best["columns"] = min(best["columns"], time.process_time() - start)
        start = time.process_time()
        year = provider.ProviderYear(plan)
        year.add(claims, results, at)
        year.settle()
        best["year"] = min(best["year"], time.process_time() - start)
    return best


def row(folder: Path, n: int, rounds: int = 2) -> dict:
    """benchmarks/table.py's provider row: best of ``rounds`` alternating runs of each
    command on the same ``n`` claims, outputs checked to agree."""
    info = build(folder, n)
    y_cmd = yibao_cmd(folder, folder / "y")
    d_cmd = duckdb_cmd(folder, folder / "d", info["budget"])
    times = {"yibao": [], "duckdb": []}
    for _ in range(rounds):
        for key, cmd in (("yibao", y_cmd), ("duckdb", d_cmd)):
            start = time.perf_counter()
            run(cmd)
            times[key].append(time.perf_counter() - start)
    agree(folder / "y", folder / "d")
    y, d = min(times["yibao"]), min(times["duckdb"])
    return {"yibao_s": y, "duckdb_s": d, "ratio": d / y, "rows": info["rows"]}
