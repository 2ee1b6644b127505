"""Hypothesis properties: the vectorised evaluator agrees with the oracle on random batches,
ignores row order, never goes negative, loses no fen, and scales with the budget.

Doubling every budget: the exact (rational) hospital values double exactly; after largest
remainder each apportioned value is within 1 fen of its exact share, so each doubled-run value
is within 1 fen of twice the exact share, and Σ over hospitals doubles exactly (the budget is
an integer, so nothing is rounded off the total)."""
import dataclasses
import datetime as dt
from fractions import Fraction

import pyarrow as pa
from hypothesis import given, settings, strategies as st

from yibao.core.points.compute import all_claim_points
from yibao.core.points.plan import (
    BASELINE, BUDGET_ONLY, POINT_SCALE, Capitation, PointsPlan, PointValue, Readmission,
    RiskSharing, Test)

from points_helpers import claims, inpatient_pool, oracle, vector

GROUPS = ["A", "M", "H", "Q", "R", "0000", None]

claim_rows = st.lists(st.fixed_dictionaries({
    "person_id": st.sampled_from(["p", "q", "r"]),
    "signed_inst": st.sampled_from([None, None, "h1", "h9"]),
    "hospital_id": st.sampled_from(["h1", "h2", "h3", "h4"]),
    "hospital_level": st.integers(1, 3),
    "hospital_tcm": st.booleans(),
    "age": st.integers(0, 100),
    "drg": st.sampled_from(GROUPS),
    "total": st.integers(0, 200_000),
    "psn_part_amt": st.integers(0, 5_000),
    # dense dates for three persons: overlapping transfer stays, chains and same-day stays
    "admit": st.integers(0, 60),
    "stay": st.integers(0, 20),
    "incomplete": st.booleans(),
}), max_size=25)


def table(rows):
    return claims(*({**r, "claim_id": f"c{i:03d}",
                     "admit_date": dt.date(2024, 1, 1) + dt.timedelta(r["admit"]),
                     "discharge_date": dt.date(2024, 1, 1) + dt.timedelta(r["admit"] + r["stay"]),
                     "los": r["stay"]} for i, r in enumerate(rows)))


pools = st.sampled_from([
    inpatient_pool(),
    inpatient_pool(point_value=PointValue(BUDGET_ONLY), reserve_share=50_000),
    inpatient_pool(sharing=RiskSharing(950_000, 950_000), point_value=PointValue(BUDGET_ONLY)),
    inpatient_pool(applies=(Test("hospital_level", ">=", 2),), readmission=Readmission(7),
                   prepaid=(("h2", 1_000), ("h9", 5))),
    inpatient_pool(sharing=RiskSharing(200_000, 300_000),
                   hospital_budgets=(("h1", 150_000), ("h2", 7), ("h9", 40_001)),
                   prepayments=(("h1", "2024-01", 90_000), ("h2", "2024-02", 3),
                                ("h3", "2024-03", 1_000), ("h9", "2024-01", 5))),
    inpatient_pool(point_value=PointValue(BUDGET_ONLY), reserve_share=50_000,
                   hospital_budgets=(("h1", 100_001), ("h3", 250_000)), prepay_floor=900_000,
                   prepayments=(("h3", "2024-02", 50_000),)),
    # overruns (negative amounts split by magnitude), both forms
    inpatient_pool(budget=7, sharing=RiskSharing(300_000, 700_000)),
    inpatient_pool(budget=11, point_value=PointValue(BUDGET_ONLY),
                   sharing=RiskSharing(1_000_000, 1_000_000)),
    # baselines floating on either form, and capitation under either form
    inpatient_pool(point_value=PointValue(BASELINE, 2_500_000_000, 750_000)),
    inpatient_pool(point_value=PointValue(BASELINE, 333_333_333, 700_000, include_paid=True),
                   readmission=Readmission(0)),
    inpatient_pool(capitation=Capitation(5_000, (("h1", 3), ("h9", 1))),
                   review=(("c001", 123_457), ("c003", 0), ("c004", 9))),  # 特病单议
    inpatient_pool(point_value=PointValue(BUDGET_ONLY), sharing=RiskSharing(950_000, 950_000),
                   capitation=Capitation(7_000, (("h1", 2),))),
])


@settings(max_examples=60, deadline=None)
@given(claim_rows, pools)
def test_vector_equals_reference(rows, pool):
    plan = PointsPlan((pool,))
    t = table(rows)
    assert vector(plan, t) == oracle(plan, t)


@settings(max_examples=40, deadline=None)
@given(claim_rows, pools, st.randoms(use_true_random=False))
def test_independent_of_row_order(rows, pool, rnd):
    plan = PointsPlan((pool,))
    t = table(rows)
    order = list(range(t.num_rows))
    rnd.shuffle(order)
    a_scored, a_h, a_p = vector(plan, t)
    b_scored, b_h, b_p = vector(plan, t.take(pa.array(order, pa.int64())))
    key = lambda r: r["claim_id"]
    assert sorted(a_scored, key=key) == sorted(b_scored, key=key)
    assert (a_h, a_p) == (b_h, b_p)


@settings(max_examples=60, deadline=None)
@given(claim_rows, pools)
def test_points_never_negative_and_no_fen_lost(rows, pool):
    plan = PointsPlan((pool,))
    scored, hosp, (p,) = vector(plan, table(rows))
    assert all(r["points"] >= 0 for r in scored)
    assert sum(h["value"] for h in hosp) == p["distributed"]
    assert sum(h["hifp_pay"] for h in hosp) == p["hifp_pay"]
    carries = pool.point_value.kind != BUDGET_ONLY and (
        pool.point_value.kind != BASELINE or pool.point_value.include_paid)
    if p["points_pv"] and not pool.hospital_budgets:
        floating = p["fund_amt"] + (p["psn_part_amt"] if carries else 0)
        assert p["distributed"] == floating + p["budget_deviation"] + p["capitation_used"]
    for h in hosp:  # patients' payments are taken off once, and only when points carry them
        assert h["hifp_pay"] == h["value"] - (h["psn_part_amt"] if carries else 0)
    ungrouped = [r for r in scored if r["case_class"] == "ungrouped"]
    assert sum(h["pending_review_claims"] for h in hosp) == len(ungrouped)


@settings(max_examples=40, deadline=None)
@given(claim_rows, pools, st.integers(1, 3))
def test_independent_of_partitioning_by_person(rows, pool, pieces):
    """Claims split by person into pieces, scored and summed piece by piece, then settled
    once: the same as the whole batch (readmissions never cross persons)."""
    from yibao.core import provider
    from yibao.core.points.compute import hospital_sums
    from yibao.core.points.settle import settle_pool
    plan = PointsPlan((pool,))
    t = table(rows)
    _, whole_h, whole_p = vector(plan, t)
    partials = {}
    for k in range(pieces):
        mine = [i for i, r in enumerate(rows) if "pqr".index(r["person_id"]) % pieces == k]
        part = t.take(pa.array(mine, pa.int64()))
        if not part.num_rows:
            continue
        sums = hospital_sums(pool, part, all_claim_points(plan, part), "psn_part_amt", None)
        partials = provider.merge_partials(partials, {pool.name: sums})
    per_h, signed = partials.get(pool.name, ({}, {}))
    h_rows, p_row = settle_pool(pool, per_h, signed)
    assert (h_rows, [p_row]) == (whole_h, whole_p)


@settings(max_examples=40, deadline=None)
@given(claim_rows, st.integers(1, 10**9))
def test_doubling_the_budget(rows, budget):
    pool = inpatient_pool(budget=budget, point_value=PointValue(BUDGET_ONLY))
    t = table(rows)
    _, h1, (p1,) = vector(PointsPlan((pool,)), t)
    _, h2, (p2,) = vector(PointsPlan((dataclasses.replace(pool, budget=2 * budget),)), t)
    assert p2["distributed"] == 2 * p1["distributed"]
    for a, b in zip(h1, h2):
        exact = Fraction(a["points"] * budget, p1["points_pv"]) if p1["points_pv"] else 0
        assert abs(a["value"] - exact) < 1
        assert abs(b["value"] - 2 * exact) < 1
        assert abs(b["value"] - 2 * a["value"]) <= 2
