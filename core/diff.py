"""What a policy change costs: settle one claim batch under two policies and compare.

``diff_policies(a, b, claims)`` returns a ``DiffReport`` of pyarrow tables (money in int64
fen): fund spending per layer, per tier and per hospital level under each policy; how many
claims' self-pay changed (up and down), the distribution of the change (a histogram with integer fen
edges) and the largest movers. ``a`` and ``b`` are a Policy, a Plan or a tuple of versions (each claim
under the version in force on its discharge date).

Only claims settled under both policies are compared; claims rejected under one of them are
counted (``rejected_a``/``rejected_b``). Fund spending of a claim is ``total − self_pay``
(every layer's payment). An empty batch gives empty tables and zero counts.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .engine import settle
from .policy import Policy


@dataclass
class DiffReport:
    policy_a: str
    policy_b: str
    compared: int  # claims settled under both
    rejected_a: int
    rejected_b: int
    totals: dict  # fund_a, fund_b, self_pay_a, self_pay_b (fen)
    layers: pa.Table  # layer, label, fund_a, fund_b, change
    tiers: pa.Table  # tier, claims, fund_a, fund_b, change
    levels: pa.Table  # hospital_level, claims, fund_a, fund_b, change
    changed: int  # claims whose self-pay changed
    raised: int  # … and went up
    lowered: int  # … and went down (changed = raised + lowered)
    histogram: pa.Table  # lo, hi (fen, [lo, hi)), claims — over the changed claims
    movers: pa.Table  # claim_id, person_id, tier, hospital_level, self_pay_a, self_pay_b, change


def _settle(policy, claims, registry):
    """(the latest version, its labels name the layers; the batch) of a Policy, a Plan or
    a sequence of version plans."""
    policy = Policy.of(policy)
    return policy.last, settle(policy, claims, registry)


def _layers(plan_a, plan_b) -> list:
    out = {layer.name: layer.label for layer in plan_a.layers}
    for layer in plan_b.layers:
        out.setdefault(layer.name, layer.label)
    return list(out.items())


def _sum(table: pa.Table, name: str) -> int:
    if name not in table.column_names:
        return 0
    return int(pc.sum(table.column(name)).as_py() or 0)


def _joined(res_a: pa.Table, res_b: pa.Table, claims: pa.Table) -> pa.Table:
    """One row per claim settled under both: its attributes, fund and self-pay under each."""
    attrs = claims.select(["claim_id", "person_id", "tier", "hospital_level", "total"])
    attrs = attrs.set_column(2, "tier", pc.cast(attrs.column("tier"), pa.string()))
    a = res_a.select(["claim_id", "self_pay"]).rename_columns(["claim_id", "self_pay_a"])
    b = res_b.select(["claim_id", "self_pay"]).rename_columns(["claim_id", "self_pay_b"])
    both = a.join(b, "claim_id", join_type="inner").join(attrs, "claim_id", join_type="inner")
    both = both.append_column("fund_a", pc.subtract(both.column("total"),
                                                    both.column("self_pay_a")))
    both = both.append_column("fund_b", pc.subtract(both.column("total"),
                                                    both.column("self_pay_b")))
    both = both.append_column("change", pc.subtract(both.column("self_pay_b"),
                                                    both.column("self_pay_a")))
    return both.sort_by([("claim_id", "ascending")])


def _grouped(both: pa.Table, by: str) -> pa.Table:
    g = both.group_by(by).aggregate([("claim_id", "count"), ("fund_a", "sum"),
                                     ("fund_b", "sum")])
    g = g.rename_columns([{"claim_id_count": "claims", "fund_a_sum": "fund_a",
                           "fund_b_sum": "fund_b"}.get(n, n) for n in g.column_names])
    g = g.select([by, "claims", "fund_a", "fund_b"])
    g = g.append_column("change", pc.subtract(g.column("fund_b"), g.column("fund_a")))
    return g.sort_by([(by, "ascending")])


def histogram(values: np.ndarray, bins: int = 20) -> pa.Table:
    """Counts of ``values`` (int fen) in ``bins`` equal integer-width bins [lo, hi)."""
    if len(values) == 0:
        return pa.table({"lo": pa.array([], pa.int64()), "hi": pa.array([], pa.int64()),
                         "claims": pa.array([], pa.int64())})
    lo, hi = int(values.min()), int(values.max()) + 1
    width = max(1, -(-(hi - lo) // bins))
    idx = (values - lo) // width
    counts = np.bincount(idx, minlength=int(idx.max()) + 1)
    edges = lo + width * np.arange(len(counts) + 1, dtype=np.int64)
    return pa.table({"lo": pa.array(edges[:-1]), "hi": pa.array(edges[1:]),
                     "claims": pa.array(counts.astype(np.int64))})


def diff_policies(a, b, claims, registry=None, top: int = 20, bins: int = 20) -> DiffReport:
    """Settle ``claims`` under ``a`` and ``b`` and report the difference (module docstring)."""
    claims = claims if isinstance(claims, pa.Table) else pa.table(claims)
    plan_a, batch_a = _settle(a, claims, registry)
    plan_b, batch_b = _settle(b, claims, registry)
    ra, rb = batch_a.results, batch_b.results
    both = _joined(ra, rb, claims)
    keep = pa.table({"claim_id": both.column("claim_id")})
    ra, rb = (r.join(keep, "claim_id", join_type="inner") for r in (ra, rb))
    layers = _layers(plan_a, plan_b)
    fund_a = [_sum(ra, n) for n, _ in layers]
    fund_b = [_sum(rb, n) for n, _ in layers]
    change = both.column("change").to_numpy()
    moved = both.filter(pc.not_equal(both.column("change"), 0))
    order = np.argsort(-np.abs(moved.column("change").to_numpy()), kind="stable")[:top]
    movers = moved.take(pa.array(order, pa.int64())).select(
        ["claim_id", "person_id", "tier", "hospital_level", "self_pay_a", "self_pay_b", "change"])
    return DiffReport(
        plan_a.name, plan_b.name, both.num_rows, batch_a.rejects.num_rows,
        batch_b.rejects.num_rows,
        {"fund_a": _sum(both, "fund_a"), "fund_b": _sum(both, "fund_b"),
         "self_pay_a": _sum(both, "self_pay_a"), "self_pay_b": _sum(both, "self_pay_b")},
        pa.table({"layer": [n for n, _ in layers], "label": [lab for _, lab in layers],
                  "fund_a": pa.array(fund_a, pa.int64()), "fund_b": pa.array(fund_b, pa.int64()),
                  "change": pa.array([y - x for x, y in zip(fund_a, fund_b)], pa.int64())}),
        _grouped(both, "tier"), _grouped(both, "hospital_level"),
        int((change != 0).sum()), int((change > 0).sum()), int((change < 0).sum()),
        histogram(change[change != 0], bins), movers)
