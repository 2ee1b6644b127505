"""Issue 17 items 4 and 5 in the points evaluator: hospitals on a fixed point value (固定费率,
Rizhao) beside the floating ones, and one pool valuing claims of several groupers on one point
scale (Shanghai's DRG and DIP). Hand-checked cases run on both evaluators; Hypothesis checks
vector == reference, row-order independence and that no fen is lost."""
import dataclasses
import datetime as dt

import pyarrow as pa
import pytest
from hypothesis import given, settings, strategies as st

from yibao.core.points import reference
from yibao.core.points.compute import all_claim_points
from yibao.core.points.plan import (
    BASELINE, BUDGET_ONLY, POINT_SCALE as PT, FixedRate, GroupSource, PointsPlan, PointValue,
    Pool, RiskSharing, Test)

from points_helpers import COLUMNS, DEFAULTS, inpatient_pool, oracle, settled, vector

EVALUATORS = pytest.mark.parametrize("evaluate", ["vector", "reference"])
YUAN_PER_POINT = 100 * 1_000_000  # FixedRate.rate of 1 yuan per point (micro-fen)

GROUPS = dict(base_points=(("B100", 100 * PT), ("B200", 200 * PT), ("D50", 50 * PT)),
              avg_cost=(("B100", 400_000), ("B200", 600_000), ("D50", 100_000)))


def claims(*rows) -> pa.Table:
    """points_helpers.claims with a second grouper's column ``dip``."""
    cols = {**COLUMNS, "dip": pa.string()}
    full = [{**DEFAULTS, "dip": None, **r} for r in rows]
    return pa.table({c: pa.array([r.get(c) for r in full], t) for c, t in cols.items()})


def batch():
    """h1: one B100 stay (100 points, cost 399,500 fund + 500 paid); h2: one B200 stay."""
    return claims({"claim_id": "c1", "hospital_id": "h1", "drg": "B100", "total": 400_000,
                   "psn_part_amt": 500},
                  {"claim_id": "c2", "hospital_id": "h2", "drg": "B200", "total": 600_000,
                   "psn_part_amt": 1000})


# -- fixed point values (固定费率) ------------------------------------------------------------

@EVALUATORS
def test_fixed_hospital_at_its_rate_the_rest_floats_on_what_is_left(evaluate):
    # h1 at 30 yuan/point: 100 × 3,000 = 300,000; its cost 399,500, shortfall 99,500, 50%
    # made up: 49,750 -> value 349,750 (= fund due: budget / points). h2 floats on
    # 1,000,000 − 349,750 = 650,250 over its 200 points.
    pool = Pool("inp", 1_000_000, **GROUPS, point_value=PointValue(BUDGET_ONLY),
                fixed_rates=(FixedRate("h1", 30 * YUAN_PER_POINT, 500_000),))
    h, p = settled(pool, batch(), evaluate)
    assert (h["h1"]["value"], h["h1"]["compensation_amt"]) == (349_750, 49_750)
    assert h["h1"]["fixed_rate_e6"] == 30 * YUAN_PER_POINT
    assert (h["h2"]["value"], h["h2"]["fixed_rate_e6"]) == (650_250, None)
    assert p["point_value"] == "13005/4"  # 650,250 / 200 fen per point
    assert (p["fixed_amt"], p["compensation_amt"], p["points_pv"]) == (349_750, 49_750, 200 * PT)
    assert p["distributed"] == p["fund_amt"] == 1_000_000


@EVALUATORS
def test_fixed_rate_above_cost_is_kept_and_carries_patients_money(evaluate):
    # (budget + patient_paid) / points: h1 at 50 yuan/point = 500,000 ≥ its whole cost
    # 400,000: no compensation; fund due 500,000 − 500. h2 floats on (1,000,000 − 499,500)
    # + its own 1,000 paid = 501,500 -> fund due 500,500.
    pool = Pool("inp", 1_000_000, **GROUPS,
                fixed_rates=(FixedRate("h1", 50 * YUAN_PER_POINT, 1_000_000),))
    h, p = settled(pool, batch(), evaluate)
    assert (h["h1"]["value"], h["h1"]["hifp_pay"], h["h1"]["compensation_amt"]) == (
        500_000, 499_500, 0)
    assert (h["h2"]["value"], h["h2"]["hifp_pay"]) == (501_500, 500_500)
    assert p["hifp_pay"] == 1_000_000


@EVALUATORS
def test_fixed_hospital_leaves_per_hospital_budgets(evaluate):
    # per-hospital budgets with 20% / 20% sharing: h1 is on a fixed 10 yuan/point (1,000 fen
    # × 100 = 100,000, shortfall 299,500 at 70% = 209,650), no budget; h2 against its own
    # 700,000: surplus 700,000 − 599,000 = 101,000, kept 20% = 20,200 -> 619,200.
    pool = Pool("inp", 0, **GROUPS, point_value=PointValue(BUDGET_ONLY),
                sharing=RiskSharing(200_000, 200_000),
                hospital_budgets=(("h1", 900_000), ("h2", 700_000)),
                fixed_rates=(FixedRate("h1", 10 * YUAN_PER_POINT, 700_000),))
    h, p = settled(pool, batch(), evaluate)
    assert (h["h1"]["value"], h["h1"]["budget"], h["h1"]["shared_amt"]) == (309_650, None, 0)
    assert (h["h2"]["value"], h["h2"]["budget"], h["h2"]["shared_amt"]) == (619_200, 700_000,
                                                                           20_200)
    assert (p["control_total"], p["fund_amt"]) == (700_000, 309_650 + 619_200)


# -- several groupers on one point scale ------------------------------------------------------

SOURCES = (GroupSource("drg", (Test("hospital_level", "==", 3),)), GroupSource("dip"))


@EVALUATORS
def test_group_from_the_first_source_that_applies(evaluate):
    # level 3 reads its DRG, others their DIP group, on one scale: PV = 1,000,000 / 350
    t = claims({"claim_id": "a", "hospital_id": "h1", "hospital_level": 3, "drg": "B100",
                "dip": "D50", "total": 400_000},
               {"claim_id": "b", "hospital_id": "h2", "hospital_level": 2, "drg": "B100",
                "dip": "D50", "total": 100_000},
               {"claim_id": "c", "hospital_id": "h2", "hospital_level": 2, "drg": "B200",
                "total": 600_000})  # DIP did not group it: ungrouped, whatever its DRG
    pool = Pool("inp", 1_000_000, group_column="drg+dip", group_sources=SOURCES, **GROUPS,
                point_value=PointValue(BUDGET_ONLY))
    plan = PointsPlan((pool,))
    if evaluate == "reference":
        scored = reference.claim_points(plan, pool, t.to_pylist())
    else:
        scored = all_claim_points(plan, t).to_pylist()
    got = {r["claim_id"]: (r["group"], r["case_class"], r["points"]) for r in scored}
    assert got == {"a": ("B100", "normal", 100 * PT), "b": ("D50", "normal", 50 * PT),
                   "c": (None, "ungrouped", 0)}
    h, p = settled(pool, t, evaluate)
    assert p["points_pv"] == 150 * PT and p["pending_review_claims"] == 1
    assert (h["h1"]["value"], h["h2"]["value"]) == (666_667, 333_333)


# -- generated batches: vector == reference ---------------------------------------------------

rows = st.lists(st.fixed_dictionaries({
    "hospital_id": st.sampled_from(["h1", "h2", "h3", "h4"]),
    "hospital_level": st.integers(1, 3),
    "drg": st.sampled_from(["B100", "B200", "D50", "X", None]),
    "dip": st.sampled_from(["D50", "B200", None]),
    "total": st.integers(0, 900_000),
    "psn_part_amt": st.integers(0, 5_000),
    "person_id": st.sampled_from(["p", "q"]),
    "admit": st.integers(0, 40),
}), max_size=20)

FIXED = (FixedRate("h1", 3_333_333_333, 500_000), FixedRate("h9", 100, 1_000_000),
         FixedRate("h3", 7 * YUAN_PER_POINT, 0))
pools = st.sampled_from([
    inpatient_pool(fixed_rates=FIXED),
    inpatient_pool(fixed_rates=FIXED, point_value=PointValue(BUDGET_ONLY), reserve_share=50_000),
    inpatient_pool(fixed_rates=FIXED[:1], sharing=RiskSharing(950_000, 600_000),
                   point_value=PointValue(BUDGET_ONLY), budget=300_000),
    inpatient_pool(fixed_rates=FIXED, hospital_budgets=(("h1", 5), ("h2", 400_000), ("h3", 9)),
                   sharing=RiskSharing(200_000, 200_000), prepaid=(("h1", 100),)),
    inpatient_pool(fixed_rates=FIXED[1:], point_value=PointValue(BASELINE, 2_500_000_000, 750_000)),
    inpatient_pool(fixed_rates=FIXED, budget=10),  # the fixed hospitals take more than the budget
    inpatient_pool(group_column="drg+dip", group_sources=SOURCES,
                   base_points=GROUPS["base_points"] + (("A", 80 * PT),),
                   avg_cost=GROUPS["avg_cost"] + (("A", 8000),)),
    inpatient_pool(group_column="drg+dip", group_sources=(
        GroupSource("dip", (Test("hospital_level", "in", (1, 2)),)), GroupSource("drg",
                                                                                (Test("total", ">", 1000),))),
        base_points=GROUPS["base_points"], avg_cost=GROUPS["avg_cost"], fixed_rates=FIXED,
        point_value=PointValue(BUDGET_ONLY), readmission=None),
])


def table(generated):
    return claims(*({**r, "claim_id": f"c{i:03d}",
                     "admit_date": dt.date(2024, 1, 1) + dt.timedelta(r["admit"]),
                     "discharge_date": dt.date(2024, 1, 1) + dt.timedelta(r["admit"] + 3)}
                    for i, r in enumerate(generated)))


@settings(max_examples=80, deadline=None)
@given(rows, pools)
def test_vector_equals_reference(generated, pool):
    plan = PointsPlan((pool,))
    t = table(generated)
    assert vector(plan, t) == oracle(plan, t)


@settings(max_examples=40, deadline=None)
@given(rows, pools, st.randoms(use_true_random=False))
def test_no_fen_lost_and_row_order_free(generated, pool, rnd):
    plan = PointsPlan((pool,))
    t = table(generated)
    scored, hosp, (p,) = vector(plan, t)
    assert sum(h["value"] for h in hosp) == p["distributed"]
    assert sum(h["hifp_pay"] for h in hosp) == p["hifp_pay"]
    fixed = {f.hospital_id for f in pool.fixed_rates}
    assert p["fixed_amt"] == sum(h["value"] for h in hosp if h["fixmedins_code"] in fixed)
    order = list(range(t.num_rows))
    rnd.shuffle(order)
    _, hosp2, pools2 = vector(plan, t.take(pa.array(order, pa.int64())))
    assert (hosp, [p]) == (hosp2, pools2)


def test_points_plan_round_trips_with_fixed_rates_and_sources():
    pool = dataclasses.replace(inpatient_pool(fixed_rates=FIXED), group_sources=SOURCES,
                               group_column="drg+dip")
    plan = PointsPlan((pool,))
    assert PointsPlan.from_json(plan.to_json()) == plan
    text = plan.describe()
    assert "groups from: drg when hospital_level == 3; dip otherwise" in text
    assert "fixed rate h1: 3333.33 fen/point, shortfall compensated 0.5" in text
    assert "fixed rate h3: 700 fen/point, shortfall compensated 0" in text
