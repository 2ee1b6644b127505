"""Provider settlement of one DRG pool, two ways: yibao's points engine and DuckDB SQL.

The pool (the one shape both sides express): every claim belongs to it; base points B by DRG
group; coefficient k by (hospital_level, group), 1 when the pair is missing; high outliers by
the Zhejiang bands (r ≥ 3 / 2 / 1.5 by B), low outliers r ≤ 0.4; adjustments ×1.1 for a TCM
hospital then ×1.05 for age ≥ 80, each rounded half-up; a group without base points (or no
group) earns 0 points ("ungrouped"). Point value PV = (F + P) / Σ points with F = budget −
reserve (2 %) and P = Σ patient-paid; each hospital's value V[h] = points[h] × PV split by the
largest remainder method (ties by hospital_id) so Σ V = F + P to the fen; fund due = V − paid.

Input (``provider_input``): ``claim_id``, ``hospital_id``, ``hospital_level``, ``drg`` (the
CHS-DRG grouper's output, null when ungrouped), ``total``, ``self_pay`` (int64 fen),
``hospital_tcm``, ``age``. Both sides get the same Arrow table and the same ``Params``.

* ``settle_yibao(plan, claims)`` — ``all_claim_points`` + ``settle_providers``.
* ``settle_duckdb(params, claims)`` — one SQL statement for the claim points (materialised as a
  table, as yibao materialises its scored table) and one for the hospitals. Rounding is
  ``(2n + d) // 2d`` on HUGEINT (all operands ≥ 0); the largest remainder is floor shares
  plus one fen to the ``ROW_NUMBER() OVER (ORDER BY remainder DESC, hospital_id)`` ≤ leftover.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from yibao.core.plan import RATIO_SCALE
from yibao.core.points.compute import all_claim_points, settle_providers
from yibao.core.points.plan import (POINT_SCALE, ZHEJIANG_OUTLIERS, Adjustment, PointsPlan,
                                    PointValue, Pool, Test)

INPUT_COLUMNS = ("claim_id", "hospital_id", "hospital_level", "drg", "total", "self_pay",
                 "hospital_tcm", "age")
RESERVE_SHARE = 20_000  # 2 %
TCM_FACTOR = 1_100_000
OLD_FACTOR = 1_050_000
OLD_AGE = 80


def provider_input(claims: pa.Table, grouped: pa.Table) -> pa.Table:
    """The benchmark input from generated claims and ``group_drg``'s output (same rows).
    ``self_pay`` is a fixed formula (self-first part + 20 % of the rest, ≤ total), computed
    once here, outside any timing."""
    total = claims["total"].to_numpy()
    first = pc.fill_null(claims["self_first"], 0).to_numpy()
    self_pay = np.minimum(total, first + (np.maximum(total - first, 0) * 2 + 5) // 10)
    return pa.table({
        "claim_id": claims["claim_id"], "hospital_id": claims["hospital_id"],
        "hospital_level": claims["hospital_level"], "drg": grouped["drg"],
        "total": claims["total"], "self_pay": pa.array(self_pay, pa.int64()),
        "hospital_tcm": claims["hospital_tcm"], "age": claims["age"]})


@dataclass(frozen=True)
class Params:
    """The pool's numbers, shared by the PointsPlan and the SQL."""
    base: tuple      # ((drg, B ×10^4, avg cost fen), ...)
    coef: tuple      # ((level, drg, k millionths), ...)
    budget: int      # fen


def make_params(table: pa.Table, seed: int = 11) -> Params:
    """Deterministic pool numbers from the input: average cost = the group's mean total in
    the data (so outliers occur at realistic rates), B from it at ~100 fen per point ×
    noise; every 20th group gets no base points (ungrouped); coefficients 0.85/1.0/1.2 by
    level for 4 groups in 5 (the 5th left at the default 1); budget 95 % of Σ(total − paid)."""
    rng = np.random.default_rng(seed)
    sums = (table.filter(pc.is_valid(table["drg"])).group_by("drg")
            .aggregate([("total", "sum"), ("total", "count")]).sort_by("drg"))
    base, coef = [], []
    level_k = {1: 850_000, 2: 1_000_000, 3: 1_200_000}
    for i, (drg, s, n) in enumerate(zip(sums["drg"].to_pylist(), sums["total_sum"].to_pylist(),
                                        sums["total_count"].to_pylist())):
        if i % 20 == 19:
            continue
        avg = max(1, s // n)
        b = max(1, int(avg * POINT_SCALE // 100 * rng.uniform(0.8, 1.2)))
        base.append((drg, b, avg))
        if i % 5 != 4:
            coef.extend((lvl, drg, k) for lvl, k in level_k.items())
    fund_cost = pc.sum(pc.subtract(table["total"], table["self_pay"])).as_py()
    return Params(tuple(base), tuple(coef), fund_cost * 95 // 100)


def points_plan(p: Params) -> PointsPlan:
    """The same pool as a yibao PointsPlan."""
    return PointsPlan((Pool(
        name="drg", budget=p.budget, group_column="drg",
        base_points=tuple((d, b) for d, b, _ in p.base),
        avg_cost=tuple((d, a) for d, _, a in p.base),
        coefficients=tuple((str(lvl), d, k) for lvl, d, k in p.coef),
        coefficient_by="hospital_level", outliers=ZHEJIANG_OUTLIERS,
        adjustments=(Adjustment("tcm", TCM_FACTOR, (Test("hospital_tcm", "==", True),)),
                     Adjustment("old", OLD_FACTOR, (Test("age", ">=", OLD_AGE),))),
        point_value=PointValue(), reserve_share=RESERVE_SHARE),))


def settle_yibao(plan: PointsPlan, claims: pa.Table):
    """(claim points, hospitals) from yibao's vectorised points engine."""
    scored = all_claim_points(plan, claims)
    hospitals, _ = settle_providers(plan, claims, scored, patient_paid="self_pay")
    return scored, hospitals


def _t_high_sql() -> str:
    arms = []
    for band in ZHEJIANG_OUTLIERS.high:
        if band.b_max is None:
            arms.append(f"ELSE {band.t_high}")
            break
        arms.append(f"WHEN b <= {band.b_max} THEN {band.t_high}")
    return "CASE " + " ".join(arms) + " END"


def claim_sql() -> str:
    r = RATIO_SCALE
    t_low = ZHEJIANG_OUTLIERS.t_low
    return f"""
WITH c AS (
  SELECT cl.claim_id, cl.hospital_id, cl.self_pay, cl.hospital_tcm, cl.age,
         b.b, b.avg, COALESCE(k.k, {r}) AS k,
         CAST(cl.total AS HUGEINT) * {r} AS scaled, cl.total
  FROM claims cl
  LEFT JOIN base b ON b.drg = cl.drg
  LEFT JOIN coef k ON k.level = cl.hospital_level AND k.drg = cl.drg
), t AS (
  SELECT *, {_t_high_sql()} AS t_high FROM c
), cls AS (
  SELECT claim_id, hospital_id, self_pay, hospital_tcm, age,
    CASE WHEN b IS NULL THEN 'ungrouped'
         WHEN scaled >= CAST(t_high AS HUGEINT) * avg THEN 'high'
         WHEN scaled <= CAST({t_low} AS HUGEINT) * avg THEN 'low'
         ELSE 'normal' END AS case_class,
    CASE WHEN b IS NULL THEN 0
         WHEN scaled >= CAST(t_high AS HUGEINT) * avg
           THEN rdiv(CAST(b AS HUGEINT) * (CAST(k AS HUGEINT) * avg + scaled
                                           - CAST(t_high AS HUGEINT) * avg),
                     CAST(avg AS HUGEINT) * {r})  -- B·k + B·(r − T), rounded once
         WHEN scaled <= CAST({t_low} AS HUGEINT) * avg
           THEN rdiv(CAST(b AS HUGEINT) * total, avg)
         ELSE rdiv(CAST(b AS HUGEINT) * k, {r}) END AS p0
  FROM t
), a1 AS (
  SELECT *, CASE WHEN case_class <> 'ungrouped' AND hospital_tcm
                 THEN rdiv(p0 * {TCM_FACTOR}, {r}) ELSE p0 END AS p1 FROM cls
)
SELECT claim_id, hospital_id, case_class, self_pay,
       CAST(CASE WHEN case_class <> 'ungrouped' AND age >= {OLD_AGE}
                 THEN rdiv(p1 * {OLD_FACTOR}, {r}) ELSE p1 END AS BIGINT) AS points
FROM a1
"""


def hospital_sql(budget: int) -> str:
    r = RATIO_SCALE
    return f"""
WITH h AS (
  SELECT hospital_id, COUNT(*) AS claims, SUM(points) AS points,
         SUM(CASE WHEN case_class <> 'ungrouped' THEN self_pay ELSE 0 END) AS paid
  FROM pts GROUP BY hospital_id  -- an ungrouped claim is not charged (awaits review)
), tot AS (
  SELECT SUM(points) AS s,
         {budget} - rdiv(CAST({budget} AS HUGEINT) * {RESERVE_SHARE}, {r}) + SUM(paid) AS gp
  FROM h
), sh AS (
  SELECT h.*, tot.gp, CAST(h.points AS HUGEINT) * tot.gp // tot.s AS fl,
         CAST(h.points AS HUGEINT) * tot.gp % tot.s AS rem
  FROM h, tot
), rk AS (
  SELECT *, ROW_NUMBER() OVER (ORDER BY rem DESC, hospital_id) AS rn,
         gp - SUM(fl) OVER () AS leftover
  FROM sh
)
SELECT hospital_id AS fixmedins_code, claims, CAST(points AS BIGINT) AS points,
       CAST(fl + CASE WHEN rn <= leftover THEN 1 ELSE 0 END AS BIGINT) AS value,
       CAST(paid AS BIGINT) AS psn_part_amt,
       CAST(fl + CASE WHEN rn <= leftover THEN 1 ELSE 0 END - paid AS BIGINT) AS hifp_pay
FROM rk ORDER BY hospital_id
"""


def settle_duckdb(params: Params, claims: pa.Table, threads: int = 2):
    """(claim points, hospitals) from DuckDB SQL over the same Arrow table."""
    import duckdb

    con = duckdb.connect()
    try:
        con.execute(f"SET threads TO {threads}")
        con.execute("CREATE MACRO rdiv(n, d) AS "
                    "(CAST(n AS HUGEINT) * 2 + d) // (2 * CAST(d AS HUGEINT))")
        base = pa.table({"drg": [d for d, _, _ in params.base],
                         "b": pa.array([b for _, b, _ in params.base], pa.int64()),
                         "avg": pa.array([a for _, _, a in params.base], pa.int64())})
        coef = pa.table({"level": pa.array([lvl for lvl, _, _ in params.coef], pa.int8()),
                         "drg": [d for _, d, _ in params.coef],
                         "k": pa.array([k for _, _, k in params.coef], pa.int64())})
        con.register("claims", claims)
        con.register("base", base)
        con.register("coef", coef)
        con.execute("CREATE TEMP TABLE pts AS " + claim_sql())
        scored = con.sql("SELECT claim_id, hospital_id, case_class, points FROM pts"
                         ).to_arrow_table()
        hospitals = con.sql(hospital_sql(params.budget)).to_arrow_table()
        return scored, hospitals
    finally:
        con.close()
