"""The points pass (core/points/_pass.pyx) against the oracle at the edges the random batches
of test_properties rarely reach: empty pools, one-claim pools, and numbers near the int64
limits, where the pass must either give the oracle's points or stop with an error naming the
claim (never a wrapped number)."""
import dataclasses

import pyarrow as pa
import pytest
from hypothesis import event, given, settings, strategies as st

from yibao.core.errors import YibaoError
from yibao.core.points import reference
from yibao.core.points.compute import all_claim_points, claim_points, hospital_sums
from yibao.core.points.plan import (
    POINT_SCALE as PT, Adjustment, Outliers, PointsPlan, Test, ZHEJIANG_OUTLIERS)

from points_helpers import claims, inpatient_pool, oracle, vector

I64 = 2**63 - 1
COST_LIMIT = I64 // (2 * 10**6)  # |total| the pass can compare as cost × 10^6


def test_an_empty_batch_and_a_pool_nobody_applies_to_settle_like_the_oracle():
    plan = PointsPlan((inpatient_pool(),))
    assert vector(plan, claims().slice(0, 0)) == oracle(plan, claims().slice(0, 0))
    nobody = PointsPlan((inpatient_pool(applies=(Test("hospital_level", ">=", 9),)),))
    t = claims({"claim_id": "c1", "drg": "A", "total": 9_000})
    scored, hosp, pools = vector(nobody, t)
    assert (scored, hosp, pools) == oracle(nobody, t)
    assert scored == [] and hosp == [] and pools[0]["points"] == 0


@pytest.mark.parametrize("row", [
    {"drg": "A", "total": 8_000},                                     # normal
    {"drg": "A", "total": 24_000, "hospital_level": 3},               # high, k 1.2
    {"drg": "M", "total": 100, "age": 85, "hospital_tcm": True},      # low, both adjustments
    {"drg": "A", "total": 4_000, "incomplete": True},                 # incomplete
    {"drg": "R", "los": 75},                                          # bed-day, three tiers
    {"drg": "0000", "total": 5_000},                                  # ungrouped
    {"drg": None, "total": 5_000},                                    # no group
    {"claim_id": "rv", "drg": None, "total": 5_000},                  # special review
])
def test_one_claim_pool_equals_the_oracle(row):
    plan = PointsPlan((inpatient_pool(),))
    t = claims({"claim_id": "c1", **row})
    assert vector(plan, t) == oracle(plan, t)


def oracle_steps(pool, rows) -> dict:
    """claim id -> every points value the oracle writes for it (case class, each
    adjustment): the pass holds each in int64, so it must stop exactly when one leaves it."""
    steps = {}

    def record(event):
        pts = getattr(event, "points", None)
        if hasattr(event, "claim_id") and isinstance(pts, int):
            steps.setdefault(event.claim_id, []).append(pts)
    reference.claim_points(PointsPlan((pool,)), pool, rows, record=record)
    return steps


big = st.one_of(st.integers(0, 2**40), st.integers(2**40, 2**62), st.just(COST_LIMIT),
                st.just(COST_LIMIT + 1))
# base points, coefficients, averages and factors up to bounds under which no 128-bit product
# overflows: then the pass stops exactly when a written step leaves int64
edge_pools = st.builds(
    lambda b, k, avg, f1, f2, t_low: inpatient_pool(
        base_points=(("A", b), ("M", 150 * PT)), avg_cost=(("A", avg), ("M", 15_000)),
        coefficients=(("3", "A", k),), readmission=None, review=(),
        outliers=dataclasses.replace(ZHEJIANG_OUTLIERS, t_low=t_low),
        adjustments=(Adjustment("tcm", f1, (Test("hospital_tcm", "==", True),)),
                     Adjustment("elderly", f2, (Test("age", ">=", 80),)))),
    st.integers(1, 2**40), st.integers(1, 2**24), st.integers(1, 2**50),
    st.integers(1, 2**24), st.integers(1, 2**24), st.sampled_from([0, 400_000]))
edge_rows = st.lists(st.fixed_dictionaries({
    "drg": st.sampled_from(["A", "M", None]),
    "total": st.one_of(big, big.map(lambda v: -v)),
    "hospital_level": st.integers(1, 3), "hospital_tcm": st.booleans(),
    "age": st.integers(0, 100), "incomplete": st.booleans(),
}), min_size=1, max_size=6)


@settings(max_examples=150, deadline=None)
@given(edge_rows, edge_pools)
def test_near_the_int64_limits_the_pass_equals_the_oracle_or_names_the_claim(rows, pool):
    t = claims(*({**r, "claim_id": f"c{i}"} for i, r in enumerate(rows)))
    plan = PointsPlan((pool,))
    steps = oracle_steps(pool, t.to_pylist())
    first_bad = next((f"c{i}" for i, r in enumerate(rows)
                      if abs(r["total"]) > COST_LIMIT
                      or any(abs(p) > I64 for p in steps.get(f"c{i}", []))), None)
    event("stops" if first_bad else "equals the oracle")
    if first_bad is None:
        got = claim_points(plan, pool, t).to_pylist()
        assert got == reference.claim_points(plan, pool, t.to_pylist())
    else:
        with pytest.raises(OverflowError, match=rf"claim {first_bad}\b"):
            claim_points(plan, pool, t)


@pytest.mark.parametrize("b, avg", [(2_000_001, 1), (10**12, 3), (I64, 1)])
def test_an_incomplete_stay_whose_share_leaves_int64_gets_its_base_points(b, avg):
    """Incomplete: min(B, B·k·r). The oracle writes only the minimum, so a share B·k·r far
    beyond int64 (even beyond 128 bits) is B, as the oracle's, not an overflow (found by
    the Hypothesis test below: B 2,000,001, avg 1, cost at the limit)."""
    pool = inpatient_pool(base_points=(("A", b),), avg_cost=(("A", avg),), readmission=None,
                          review=(), adjustments=())
    t = claims({"claim_id": "c1", "drg": "A", "total": COST_LIMIT, "incomplete": True},
               {"claim_id": "c2", "drg": "A", "total": 1, "incomplete": True})
    plan = PointsPlan((pool,))
    got = claim_points(plan, pool, t).to_pylist()
    assert got == reference.claim_points(plan, pool, t.to_pylist())
    assert got[0]["points"] == b and got[0]["case_class"] == "incomplete"


def test_an_incomplete_stay_whose_negative_share_leaves_int64_names_the_claim():
    pool = inpatient_pool(base_points=(("A", 2_000_001),), avg_cost=(("A", 1),),
                          readmission=None, review=(), adjustments=())
    t = claims({"claim_id": "c1", "drg": "A", "total": 5, "incomplete": True},
               {"claim_id": "neg", "drg": "A", "total": -COST_LIMIT, "incomplete": True})
    with pytest.raises(OverflowError, match="pool inp: claim neg"):
        claim_points(PointsPlan((pool,)), pool, t)


def test_points_beyond_int64_name_the_claim():
    # B = 8 × 10^14 points (8 × 10^18 ×10^4) fits int64; at k 1.2 it does not, and must not wrap
    pool = inpatient_pool(base_points=(("A", 8 * 10**14 * PT),),
                          avg_cost=(("A", 8_000),), readmission=None)
    t = claims({"claim_id": "ok", "drg": "A", "total": 8_000, "hospital_level": 2},
               {"claim_id": "huge", "drg": "A", "total": 8_000, "hospital_level": 3})
    with pytest.raises(OverflowError, match="pool inp: claim huge") as raised:
        claim_points(PointsPlan((pool,)), pool, t)
    assert isinstance(raised.value, YibaoError) and raised.value.exit_code == 2  # bad input


def test_a_hospital_sum_beyond_int64_names_the_claim():
    pool = inpatient_pool()
    t = claims({"claim_id": "c1", "drg": "A", "total": 8_000},
               {"claim_id": "c2", "drg": "A", "total": 8_000})
    scored = all_claim_points(PointsPlan((pool,)), t)
    scored = scored.set_column(scored.schema.get_field_index("points"), "points",
                               pa.array([2**62, 2**62], pa.int64()))
    with pytest.raises(OverflowError, match="pool inp: claim c2"):
        hospital_sums(pool, t, scored, "psn_part_amt", None)


def test_bands_without_an_upper_limit_and_no_low_outliers():
    """A pool with one open high band and no low outliers: every class the pass can give
    still equals the oracle's (the pass reads the band of each distinct group once)."""
    pool = inpatient_pool(outliers=Outliers(high=(ZHEJIANG_OUTLIERS.high[-1],), t_low=0))
    t = claims(*({"claim_id": f"c{i}", "drg": g, "total": c}
                 for i, (g, c) in enumerate([("A", 1), ("A", 12_000), ("H", 45_000),
                                             ("Q", 10**12), ("M", 0)])))
    plan = PointsPlan((pool,))
    assert vector(plan, t) == oracle(plan, t)
