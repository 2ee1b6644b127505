"""Provider-side TCM tilt (日照 "三个倾斜": 中医DRG病组, 中医医疗机构费率调整系数上浮倾斜,
中医医疗机构年终单独清算并提高补偿比例) as a rewrite of a ``PointsPlan``.

``TcmTilt`` holds the city's figures (a plan node, JSON round-trips with the plan); ``apply``
returns a new ``PointsPlan`` that core/points evaluates as it is (vector and reference), so
core/points needs no TCM knowledge:

1. ``groups`` / ``avg_cost``: TCM DRG groups (中医病组, e.g. codes the city's grouper or review
   assigns) with their own base points and average cost, added to every target pool; a group
   already in a pool is an error (one weight per group).
2. ``institution_factor``: an ``Adjustment`` named ``tcm_institution`` multiplying the points of
   claims whose ``institution_column`` is true (higher coefficient for TCM institutions).
3. ``separate_budget`` (fen) not None: every target pool is split in two for the year-end
   clearing — ``<pool>_tcm`` (TCM institutions, that budget, risk sharing with ``keep`` /
   ``bear``, i.e. a higher compensation: the fund covers 1 − bear of an overrun) and the
   original pool (other institutions, the rest of the budget). With one target pool only,
   because a budget cannot be split over several pools from one figure.

The empty tilt (no groups, factor 1, no separate budget) returns the plan unchanged.
"""
from __future__ import annotations

import dataclasses
from typing import Optional

from yibao.core.plan import RATIO_SCALE, register_node
from yibao.core.points.plan import Adjustment, PointsPlan, Pool, RiskSharing, Test
from yibao.core.records import Record, record


@register_node
@record
class TcmTilt(Record):
    """The TCM tilt's figures (see module docstring); ``pools`` empty means every pool."""
    groups: tuple = ()  # ((group, base points ×10^4), ...)
    avg_cost: tuple = ()  # ((group, fen), ...)
    institution_factor: int = RATIO_SCALE  # ratio
    institution_column: str = "hospital_tcm"
    separate_budget: Optional[int] = None  # fen, the TCM institutions' own pool budget
    keep: int = 0  # ratio of a surplus the TCM institutions keep (结余留用)
    bear: int = 0  # ratio of an overrun they bear (超支分担); the fund compensates the rest
    pools: tuple = ()

    @classmethod
    def from_figures(cls, figures: dict) -> "TcmTilt":
        """The tilt from a policy's ``adjust by tcm_tilt { … }`` figures (engine units,
        see ``FIGURES``): ``groups`` rows split into base points and average costs."""
        figures = dict(figures)
        rows = figures.pop("groups", ())
        return cls(groups=tuple((g, p) for g, p, _ in rows),
                   avg_cost=tuple((g, a) for g, _, a in rows), **figures)


# The figures a policy gives in ``adjust by tcm_tilt { … }`` (plugins/decls.py FIGURE_KINDS).
FIGURES = (("groups", "points_csv"), ("institution_factor", "ratio"),
           ("institution_column", "column"), ("separate_budget", "money"), ("keep", "ratio"),
           ("bear", "ratio"), ("pools", "pool"))


def _targets(plan: PointsPlan, tilt: TcmTilt) -> list:
    names = [p.name for p in plan.pools]
    unknown = [n for n in tilt.pools if n not in names]
    if unknown:
        raise ValueError(f"tcm tilt: no pool named {unknown[0]!r} (pools: {', '.join(names)})")
    return list(tilt.pools or names)


def _add_groups(pool: Pool, tilt: TcmTilt) -> Pool:
    have = {g for g, _ in pool.base_points}
    clash = [g for g, _ in tilt.groups if g in have]
    if clash:
        raise ValueError(f"tcm tilt: group {clash[0]!r} already has base points in pool "
                         f"{pool.name!r}")
    return dataclasses.replace(pool, base_points=pool.base_points + tuple(tilt.groups),
                               avg_cost=pool.avg_cost + tuple(tilt.avg_cost))


def _is_tcm(tilt: TcmTilt) -> Test:
    return Test(tilt.institution_column, "==", True)


def _add_factor(pool: Pool, tilt: TcmTilt) -> Pool:
    if tilt.institution_factor == RATIO_SCALE:
        return pool
    adj = Adjustment("tcm_institution", tilt.institution_factor, (_is_tcm(tilt),))
    return dataclasses.replace(pool, adjustments=pool.adjustments + (adj,))


def _split(pool: Pool, tilt: TcmTilt) -> tuple:
    budget = tilt.separate_budget
    if not 0 <= budget <= pool.budget:
        raise ValueError(f"tcm tilt: separate budget {budget} is outside pool {pool.name!r}'s "
                         f"budget 0..{pool.budget}")
    base = pool.sharing or RiskSharing(keep=0, bear=0)
    tcm = dataclasses.replace(
        pool, name=f"{pool.name}_tcm", budget=budget, applies=pool.applies + (_is_tcm(tilt),),
        sharing=dataclasses.replace(base, keep=tilt.keep, bear=tilt.bear))
    rest = dataclasses.replace(pool, budget=pool.budget - budget,
                               applies=pool.applies + (Test(tilt.institution_column, "!=", True),))
    return tcm, rest


def apply(plan: PointsPlan, tilt: TcmTilt) -> PointsPlan:
    """The plan with the tilt applied to its target pools (see module docstring)."""
    targets = _targets(plan, tilt)
    if tilt.separate_budget is not None and len(targets) != 1:
        raise ValueError("tcm tilt: a separate budget needs exactly one target pool "
                         f"(got {', '.join(targets)}); name it in TcmTilt.pools")
    pools = []
    for pool in plan.pools:
        if pool.name not in targets:
            pools.append(pool)
            continue
        pool = _add_factor(_add_groups(pool, tilt), tilt)
        pools.extend(_split(pool, tilt) if tilt.separate_budget is not None else (pool,))
    return dataclasses.replace(plan, pools=tuple(pools))
