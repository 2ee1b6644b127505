"""Peer implementations of the REFERENCE policy (spec/benefits.md), for benchmarks.

These are the honest alternatives a city team would write without yibao: the same four layers
(basic_inpatient, basic_outpatient, critical, assistance) hand-coded three ways. Each takes a
pyarrow Table of claims (money int64 fen) and returns a Table with ``claim_id``, the claim's
``person_id``, ``hospital_id`` and ``discharge_date`` (what yibao's results carry too, so the
peers write as many columns), ``basic_inpatient``, ``basic_outpatient``, ``critical``,
``assistance``, ``self_pay`` (int64 fen), rows in the input order. All arithmetic is exact integer arithmetic; ratios are applied as
``(x × pct + 50) // 100`` (half-up; every amount here is ≥ 0).

* ``settle_python`` — a plain per-claim loop over dicts, claims sorted by (person, year,
  discharge_date, claim_id). It follows the spec exactly, attributes changing mid-year included.
* ``settle_duckdb`` — DuckDB SQL: yearly deductibles, caps, bands and the self-pay limit are
  ``SUM … OVER (PARTITION BY person_id, year ORDER BY discharge_date, claim_id)`` windows.
* ``settle_polars`` — the same closed forms as lazy Polars ``cum_sum().over(key)``, ``key``
  numbering the (person, year) runs of the sorted frame.

How the window forms work (for one key-year, claims in order; ``C⁻``/``C`` the cumulative of a
quantity before / including this claim, every sum counting only claims the layer applies to):
  yearly deductible D    d = min(D, C_base) − min(D, C⁻_base)
  yearly cap K           pay = min(K, C_pre) − min(K, C⁻_pre)      (pre = amount before the cap)
  bands over e           Σ_band round(|[C⁻_e, C_e) ∩ [lo, hi)| × rate)
  self-pay limit L       pay = r − (min(L, C_r) − min(L, C⁻_r))
These are exact when D, K and L are the same for all of a key's claims of the year. The
outpatient 5,000 cap followed by the shared 300,000 "basic_annual" cap is also exact: once the
shared cap binds it is exhausted, and every later basic payment is 0 whatever the outpatient
cap's own accumulator says.

Known limit of the window forms (expected, and the reason yibao keeps explicit accumulators):
they cannot follow a person whose attributes change within the year. When ``low_income`` flips
mid-year the critical deductible (20,000 / 10,000) and cap (300,000 / 500,000) differ between
that person's claims, and ``min(D, C) − min(D, C⁻)`` no longer equals the spec's
``min(base, max(0, D_this − consumed))`` (e.g. the worked example S2). ``tier`` only picks a
per-claim ratio, so a tier change alone is handled, but the tests only compare the window forms
on persons whose ``low_income`` and ``tier`` hold all year.
"""
from __future__ import annotations

from collections import defaultdict

import numpy as np
import pyarrow as pa

__all__ = ["settle_python", "settle_duckdb", "settle_polars", "OUTPUT_COLUMNS"]

IDENTITY_COLUMNS = ("person_id", "hospital_id", "discharge_date")  # as yibao's results carry
OUTPUT_COLUMNS = ("claim_id", *IDENTITY_COLUMNS, "basic_inpatient", "basic_outpatient", "critical",
                  "assistance", "self_pay")

# ---- the reference policy, in fen and whole percents --------------------------------------
YUAN = 100
INPATIENT_DEDUCTIBLE = {1: 300 * YUAN, 2: 600 * YUAN, 3: 800 * YUAN}   # 起付线, per claim
INPATIENT_RATIO = {  # percent by (tier, hospital level)
    ("tier1", 1): 95, ("tier1", 2): 90, ("tier1", 3): 85,
    ("tier2", 1): 95, ("tier2", 2): 90, ("tier2", 3): 85,
    ("tier3", 1): 90, ("tier3", 2): 85, ("tier3", 3): 75,
}
BASIC_ANNUAL_CAP = 300_000 * YUAN            # shared by basic_inpatient and basic_outpatient
OUTPATIENT_DEDUCTIBLE = 1_000 * YUAN         # per person per year
OUTPATIENT_RATIO = {1: 70, 2: 60, 3: 50}
OUTPATIENT_CAP = 5_000 * YUAN
CRITICAL_DEDUCTIBLE = (20_000 * YUAN, 10_000 * YUAN)   # (ordinary, low_income)
CRITICAL_BANDS = ((0, 100_000 * YUAN, 60), (100_000 * YUAN, None, 70))
CRITICAL_CAP = (300_000 * YUAN, 500_000 * YUAN)        # (ordinary, low_income)
ASSISTANCE_LIMIT = 50_000 * YUAN             # 自负封顶: yearly kept burden


def _pct(amount: int, pct: int) -> int:
    """round_half_up(amount × pct / 100) for amount ≥ 0."""
    return (amount * pct + 50) // 100


# ---------------------------------------------------------------- plain Python

def _bands(start: int, e: int) -> int:
    """Banded payment for cumulative e covering [start, start + e)."""
    paid = 0
    for lo, hi, pct in CRITICAL_BANDS:
        top = start + e if hi is None else min(start + e, hi)
        paid += _pct(max(0, top - max(start, lo)), pct)
    return paid


def _settle_one(c: dict, acc: dict) -> tuple[int, int, int, int]:
    """One claim through the four layers; ``acc`` is the person-year accumulator dict."""
    base = max(0, c["in_scope"] - c["self_first"])
    level, low = c["hospital_level"], bool(c["low_income"])
    inpatient = outpatient = 0
    if c["setting"] in ("inpatient", "rehab"):
        d = 0 if low else min(base, INPATIENT_DEDUCTIBLE[level])
        pay = _pct(base - d, INPATIENT_RATIO[(c["tier"], level)])
        inpatient = min(pay, max(0, BASIC_ANNUAL_CAP - acc["annual"]))
        acc["annual"] += inpatient
    elif c["setting"] == "outpatient":
        d = min(base, max(0, OUTPATIENT_DEDUCTIBLE - acc["out_ded"]))
        acc["out_ded"] += d
        pay = _pct(base - d, OUTPATIENT_RATIO[level])
        pay = min(pay, max(0, OUTPATIENT_CAP - acc["out_cap"]))
        outpatient = min(pay, max(0, BASIC_ANNUAL_CAP - acc["annual"]))
        acc["out_cap"] += outpatient
        acc["annual"] += outpatient
    base = max(0, c["in_scope"] - inpatient - outpatient)
    d = min(base, max(0, CRITICAL_DEDUCTIBLE[low] - acc["crit_ded"]))
    acc["crit_ded"] += d
    e = base - d
    pay = _bands(acc["crit_e"], e)
    acc["crit_e"] += e
    critical = min(pay, max(0, CRITICAL_CAP[low] - acc["crit_cap"]))
    acc["crit_cap"] += critical
    assistance = 0
    if low:
        r = max(0, c["total"] - inpatient - outpatient - critical)
        assistance = min(r, max(0, acc["kept"] + r - ASSISTANCE_LIMIT))
        acc["kept"] += r - assistance
    return inpatient, outpatient, critical, assistance


def settle_python(table: pa.Table) -> pa.Table:
    """The obvious program: sort, then one dict-based loop per claim, accumulators per person-year."""
    cols = ["claim_id", "person_id", "tier", "low_income", "setting", "hospital_level",
            "discharge_date", "total", "in_scope", "self_first"]
    rows = table.select(cols).to_pylist()
    order = sorted(range(len(rows)), key=lambda i: (rows[i]["person_id"], rows[i]["discharge_date"], rows[i]["claim_id"]))
    accumulators: dict = defaultdict(lambda: defaultdict(int))
    out = [None] * len(rows)
    for i in order:
        c = rows[i]
        out[i] = _settle_one(c, accumulators[(c["person_id"], c["discharge_date"].year)])
    names = OUTPUT_COLUMNS[4:8]
    result = {name: table[name] for name in ("claim_id", *IDENTITY_COLUMNS)}
    for k, name in enumerate(names):
        result[name] = pa.array([o[k] for o in out], pa.int64())
    paid = [sum(o) for o in out]
    result["self_pay"] = pa.array([r["total"] - p for r, p in zip(rows, paid)], pa.int64())
    return pa.table(result)


# ---------------------------------------------------------------- DuckDB

def _case(column: str, mapping: dict) -> str:
    whens = " ".join(f"WHEN {k} THEN {v}" for k, v in mapping.items())
    return f"CASE {column} {whens} END"


def _ratio_case() -> str:
    whens = " ".join(f"WHEN tier = '{t}' AND hospital_level = {lv} THEN {pct}" for (t, lv), pct in INPATIENT_RATIO.items())
    return f"CASE {whens} END"


def _duckdb_sql() -> str:
    w = "OVER (PARTITION BY person_id, yr ORDER BY discharge_date, claim_id ROWS UNBOUNDED PRECEDING)"
    cum = lambda x: f"CAST(SUM({x}) {w} AS BIGINT)"  # noqa: E731  (int128 sums back to int64)
    ded_low, ded = CRITICAL_DEDUCTIBLE[1], CRITICAL_DEDUCTIBLE[0]
    cap_low, cap = CRITICAL_CAP[1], CRITICAL_CAP[0]
    band_edge = CRITICAL_BANDS[1][0]
    lo_pct, hi_pct = CRITICAL_BANDS[0][2], CRITICAL_BANDS[1][2]
    return f"""
WITH c AS (
  SELECT rn, claim_id, person_id, hospital_id, CAST(tier AS VARCHAR) AS tier,
         low_income, CAST(setting AS VARCHAR) AS setting, hospital_level, discharge_date,
         year(discharge_date) AS yr, total, in_scope, self_first,
         GREATEST(0, in_scope - self_first) AS base
  FROM claims
),
basic_pre AS (   -- basic payment before the caps; outpatient yearly deductible by window
  SELECT *,
    CASE WHEN setting IN ('inpatient', 'rehab') THEN
           (GREATEST(0, base - CASE WHEN low_income THEN 0 ELSE {_case('hospital_level', INPATIENT_DEDUCTIBLE)} END)
            * {_ratio_case()} + 50) // 100
         ELSE 0 END AS in_pre,
    CASE WHEN setting = 'outpatient' THEN base ELSE 0 END AS out_base
  FROM c
),
out_ded AS (
  SELECT *, LEAST({OUTPATIENT_DEDUCTIBLE}, {cum('out_base')})
            - LEAST({OUTPATIENT_DEDUCTIBLE}, {cum('out_base')} - out_base) AS out_d
  FROM basic_pre
),
out_pre AS (
  SELECT *, ((out_base - out_d) * {_case('hospital_level', OUTPATIENT_RATIO)} + 50) // 100 AS out_raw
  FROM out_ded
),
out_cap AS (   -- the outpatient 5,000 cap on the cumulative pre-cap payment
  SELECT *, CASE WHEN setting = 'outpatient'
              THEN LEAST({OUTPATIENT_CAP}, {cum('out_raw')}) - LEAST({OUTPATIENT_CAP}, {cum('out_raw')} - out_raw)
              ELSE 0 END AS out_capped
  FROM out_pre
),
basic AS (     -- the shared basic_annual cap over both layers
  SELECT *, in_pre + out_capped AS q FROM out_cap
),
basic_paid AS (
  SELECT *, LEAST({BASIC_ANNUAL_CAP}, {cum('q')}) - LEAST({BASIC_ANNUAL_CAP}, {cum('q')} - q) AS basic_pay
  FROM basic
),
crit_base AS (
  SELECT *, GREATEST(0, in_scope - basic_pay) AS cb,
            CASE WHEN low_income THEN {ded_low} ELSE {ded} END AS cd,
            CASE WHEN low_income THEN {cap_low} ELSE {cap} END AS ck
  FROM basic_paid
),
crit_e AS (
  SELECT *, cb - (LEAST(cd, {cum('cb')}) - LEAST(cd, {cum('cb')} - cb)) AS e FROM crit_base
),
crit_pre AS (
  SELECT *, {cum('e')} - e AS s FROM crit_e
),
crit_raw AS (
  SELECT *, ((GREATEST(0, LEAST(s + e, {band_edge}) - LEAST(s, {band_edge}))) * {lo_pct} + 50) // 100
          + ((GREATEST(0, s + e - GREATEST(s, {band_edge}))) * {hi_pct} + 50) // 100 AS craw
  FROM crit_pre
),
crit AS (
  SELECT *, LEAST(ck, {cum('craw')}) - LEAST(ck, {cum('craw')} - craw) AS critical FROM crit_raw
),
assist_base AS (
  SELECT *, CASE WHEN low_income THEN GREATEST(0, total - basic_pay - critical) ELSE 0 END AS r FROM crit
),
assist AS (
  SELECT *, r - (LEAST({ASSISTANCE_LIMIT}, {cum('r')}) - LEAST({ASSISTANCE_LIMIT}, {cum('r')} - r)) AS assistance
  FROM assist_base
)
SELECT claim_id, person_id, hospital_id, discharge_date,
       CAST(CASE WHEN setting = 'outpatient' THEN 0 ELSE basic_pay END AS BIGINT) AS basic_inpatient,
       CAST(CASE WHEN setting = 'outpatient' THEN basic_pay ELSE 0 END AS BIGINT) AS basic_outpatient,
       CAST(critical AS BIGINT) AS critical,
       CAST(assistance AS BIGINT) AS assistance,
       CAST(total - basic_pay - critical - assistance AS BIGINT) AS self_pay
FROM assist ORDER BY rn
"""


def settle_duckdb(table: pa.Table) -> pa.Table:
    """The reference policy as one DuckDB query of window functions (see the module docstring)."""
    import duckdb

    con = duckdb.connect()
    try:
        con.execute("SET threads TO 2")
        numbered = table.append_column("rn", pa.array(np.arange(table.num_rows, dtype=np.int64)))
        con.register("claims", numbered)
        return con.sql(_duckdb_sql()).to_arrow_table()
    finally:
        con.close()


# ---------------------------------------------------------------- Polars

def _window_increment(cum, limit):
    """What a yearly limit lets through for this claim: min(limit, C) − min(limit, C⁻)."""
    import polars as pl

    def run(amount):
        total = cum(amount)
        return pl.min_horizontal(limit, total) - pl.min_horizontal(limit, total - amount)
    return run


def settle_polars(table: pa.Table) -> pa.Table:
    """The reference policy as Polars expressions: cum_sum over (person, year) windows."""
    import polars as pl

    # sorted by (person, year, date, id): one integer id per person-year makes windows cheap
    cum = lambda x: x.cum_sum().over("key")  # noqa: E731
    col = pl.col
    inpatient_ratio = pl.lit(0)
    for (tier, level), pct in INPATIENT_RATIO.items():
        inpatient_ratio = pl.when((col("tier") == tier) & (col("hospital_level") == level)).then(pct).otherwise(inpatient_ratio)
    in_ded = pl.lit(0)
    for level, amount in INPATIENT_DEDUCTIBLE.items():
        in_ded = pl.when(col("hospital_level") == level).then(amount).otherwise(in_ded)
    out_ratio = pl.lit(0)
    for level, pct in OUTPATIENT_RATIO.items():
        out_ratio = pl.when(col("hospital_level") == level).then(pct).otherwise(out_ratio)
    edge, lo_pct, hi_pct = CRITICAL_BANDS[1][0], CRITICAL_BANDS[0][2], CRITICAL_BANDS[1][2]
    low = col("low_income")

    frame = (
        pl.from_arrow(table.select(["claim_id", "person_id", "hospital_id", "tier", "low_income", "setting",
                                    "hospital_level", "discharge_date", "total", "in_scope", "self_first"])).lazy()
        .with_row_index("rn")
        .with_columns(col("tier").cast(pl.String), col("setting").cast(pl.String),
                      col("hospital_level").cast(pl.Int64), yr=col("discharge_date").dt.year())
        .sort(["person_id", "yr", "discharge_date", "claim_id"])
        .with_columns(key=((col("person_id") != col("person_id").shift()) | (col("yr") != col("yr").shift()))
                      .fill_null(True).cum_sum())
        .with_columns(base=pl.max_horizontal(0, col("in_scope") - col("self_first")))
        .with_columns(
            in_pre=pl.when(col("setting").is_in(["inpatient", "rehab"]))
            .then((pl.max_horizontal(0, col("base") - pl.when(low).then(0).otherwise(in_ded)) * inpatient_ratio + 50) // 100)
            .otherwise(0),
            out_base=pl.when(col("setting") == "outpatient").then(col("base")).otherwise(0))
        .with_columns(out_d=_window_increment(cum, OUTPATIENT_DEDUCTIBLE)(col("out_base")))
        .with_columns(out_raw=((col("out_base") - col("out_d")) * out_ratio + 50) // 100)
        .with_columns(q=col("in_pre") + pl.when(col("setting") == "outpatient")
                      .then(_window_increment(cum, OUTPATIENT_CAP)(col("out_raw"))).otherwise(0))
        .with_columns(basic_pay=_window_increment(cum, BASIC_ANNUAL_CAP)(col("q")))
        .with_columns(cb=pl.max_horizontal(0, col("in_scope") - col("basic_pay")),
                      cd=pl.when(low).then(CRITICAL_DEDUCTIBLE[1]).otherwise(CRITICAL_DEDUCTIBLE[0]),
                      ck=pl.when(low).then(CRITICAL_CAP[1]).otherwise(CRITICAL_CAP[0]))
        .with_columns(e=col("cb") - (pl.min_horizontal(col("cd"), cum(col("cb")))
                                     - pl.min_horizontal(col("cd"), cum(col("cb")) - col("cb"))))
        .with_columns(s=cum(col("e")) - col("e"))
        .with_columns(craw=(pl.max_horizontal(0, pl.min_horizontal(col("s") + col("e"), edge) - pl.min_horizontal(col("s"), edge)) * lo_pct + 50) // 100
                      + (pl.max_horizontal(0, col("s") + col("e") - pl.max_horizontal(col("s"), edge)) * hi_pct + 50) // 100)
        .with_columns(critical=pl.min_horizontal(col("ck"), cum(col("craw")))
                      - pl.min_horizontal(col("ck"), cum(col("craw")) - col("craw")))
        .with_columns(r=pl.when(low).then(pl.max_horizontal(0, col("total") - col("basic_pay") - col("critical"))).otherwise(0))
        .with_columns(assistance=col("r") - _window_increment(cum, ASSISTANCE_LIMIT)(col("r")))
        .sort("rn").collect()
    )
    outpatient = col("setting") == "outpatient"
    result = frame.select(
        "claim_id", *IDENTITY_COLUMNS,
        basic_inpatient=pl.when(outpatient).then(0).otherwise(col("basic_pay")).cast(pl.Int64),
        basic_outpatient=pl.when(outpatient).then(col("basic_pay")).otherwise(0).cast(pl.Int64),
        critical=col("critical").cast(pl.Int64),
        assistance=col("assistance").cast(pl.Int64),
        self_pay=(col("total") - col("basic_pay") - col("critical") - col("assistance")).cast(pl.Int64),
    )
    types = {"claim_id": pa.string(), "person_id": pa.string(), "hospital_id": pa.string(),
             "discharge_date": pa.date32()}
    return result.to_arrow().cast(pa.schema([(n, types.get(n, pa.int64())) for n in OUTPUT_COLUMNS]))
