"""Yearly recalibration of base points and coefficients from historical claims (§2).

Jinhua's rule: B[g] = the group's average cost ÷ the city's average cost × 100 (RW × 100), and
k[h, g] = the level's (or hospital's) average cost for g ÷ the city's average cost for g. A
group a level never treated has no coefficient row, which the evaluator reads as 1.

Sums and counts come from Arrow's hash aggregation; the divisions are exact per group (never
per claim) and rounded half-up once: B to 4 decimals, k to millionths.
"""
from __future__ import annotations

from fractions import Fraction

import pyarrow as pa
import pyarrow.compute as pc

from yibao.core.plan import RATIO_SCALE

from .plan import POINT_SCALE
from .settle import round_half_up


def _averages(claims: pa.Table, keys: list, cost_col: str) -> dict:
    """(key values...) -> Fraction average cost, over claims whose keys are all non-null."""
    frame = pa.table({**{k: claims.column(k).cast(pa.string()) for k in keys},
                      "c": claims.column(cost_col)})
    for k in keys:
        frame = frame.filter(pc.is_valid(frame[k]))
    sums = frame.group_by(keys).aggregate([("c", "sum"), ("c", "count")])
    return {tuple(r[k] for k in keys): Fraction(r["c_sum"], r["c_count"])
            for r in sums.to_pylist()}


def group_average_cost(claims: pa.Table, group_col: str = "drg", cost_col: str = "total"):
    """((group, fen), ...) sorted by group: each group's average cost, half-up to the fen."""
    avgs = _averages(claims, [group_col], cost_col)
    return tuple(sorted((g, round_half_up(v)) for (g,), v in avgs.items()))


def calibrate(claims_two_years: pa.Table, group_col: str = "drg", by: str = "hospital_level",
              cost_col: str = "total"):
    """(base_points, coefficients) for a ``Pool``: ``((group, points ×10^4), ...)`` and
    ``((key, group, ratio), ...)`` with ``key`` the ``by`` column's value as text, both
    sorted. Claims with a null group are left out of every average (they are not grouped);
    an empty table gives two empty tuples."""
    groups = _averages(claims_two_years, [group_col], cost_col)
    if not groups:
        return (), ()
    grouped = claims_two_years.filter(pc.is_valid(claims_two_years.column(group_col)))
    costs = grouped.column(cost_col)
    city = Fraction(pc.sum(costs).as_py(), len(costs))
    base = tuple(sorted((g, round_half_up(avg / city * 100 * POINT_SCALE)) if city else (g, 0)
                        for (g,), avg in groups.items()))
    coefficients = tuple(sorted(
        (key, g, round_half_up(avg / groups[(g,)] * RATIO_SCALE))
        for (key, g), avg in _averages(grouped, [by, group_col], cost_col).items()
        if groups[(g,)]))
    return base, coefficients
