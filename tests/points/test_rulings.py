"""Hand-checked cases for the rulings of point-method.md §2–§3 (issue 11), on both evaluators.

Each case fails on the code before the rulings; the comment beside it gives the arithmetic.
Points are ×10^4, money fen."""
import datetime as dt
from fractions import Fraction

import pytest

from yibao.core.points import reference
from yibao.core.points.compute import all_claim_points, claim_points, settle_providers
from yibao.core.points.plan import (
    BASELINE, BUDGET_ONLY, POINT_SCALE as PT, BedDay, DayTier, PointsPlan, PointValue, Pool,
    Readmission, RiskSharing)

from points_helpers import claims, inpatient_pool, settled

D = dt.date
EVALUATORS = pytest.mark.parametrize("evaluate", ["vector", "reference"])


def scored(pool, table, evaluate):
    plan = PointsPlan((pool,))
    rows = (reference.claim_points(plan, pool, table.to_pylist()) if evaluate == "reference"
            else claim_points(plan, pool, table).to_pylist())
    return {r["claim_id"]: (r["case_class"], r["points"]) for r in rows}




# -- rounding once per written step ------------------------------------------------------------

@EVALUATORS
def test_high_outlier_is_one_value_rounded_once(evaluate):
    # Q: B 12.3457, avg 10 yuan, level 1 k 0.5, T 3. cost 30.04 yuan: r = 3.004.
    # B·k = 6.17285, B·(r − 3) = 0.0493828: together 6.2222328 -> 6.2222.
    # Rounded apart it would be 6.1729 + 0.0494 = 6.2223.
    got = scored(inpatient_pool(), claims(
        {"claim_id": "q", "drg": "Q", "hospital_level": 1, "total": 3004}), evaluate)
    assert got == {"q": ("high", 62_222)}


@EVALUATORS
def test_tiered_bed_day_is_one_value_rounded_once(evaluate):
    # 1.0001 points a day for 61 days, tiers ×1 (1–30), ×0.85 (31–60), ×0.75 (61–):
    # 30.003 + 25.50255 + 0.750075 = 56.255625 -> 56.2556 (tier by tier: 56.2557).
    tiers = (DayTier(1, 30, 1_000_000), DayTier(31, 60, 850_000), DayTier(61, None, 750_000))
    pool = inpatient_pool(bed_day=BedDay((("R", 10_001),), tiers))
    got = scored(pool, claims({"claim_id": "r", "drg": "R", "los": 61}), evaluate)
    assert got == {"r": ("bedday", 562_556)}


# -- readmission: any later stay ---------------------------------------------------------------

STAYS = [
    # person p, group A (80 points): 6/8–6/18 at h1, a transfer stay 6/17–6/20 at h2 that
    # overlaps it, then 6/28 at h3. 6/28 is 10 days after the first discharge, 8 after the
    # second: both earlier stays are halved (40), the last is not.
    ("p1", dict(person_id="p", hospital_id="h1", admit_date=D(2024, 6, 8),
                discharge_date=D(2024, 6, 18)), ("readmit", 400_000)),
    ("p2", dict(person_id="p", hospital_id="h2", admit_date=D(2024, 6, 17),
                discharge_date=D(2024, 6, 20)), ("readmit", 400_000)),
    ("p3", dict(person_id="p", hospital_id="h3", admit_date=D(2024, 6, 28),
                discharge_date=D(2024, 7, 1)), ("normal", 800_000)),
    # a chain q1 -> q2 -> q3, each 15 days (inclusive) after the last: every earlier link halved
    ("q1", dict(person_id="q", admit_date=D(2024, 1, 1), discharge_date=D(2024, 1, 2)),
     ("readmit", 400_000)),
    ("q2", dict(person_id="q", admit_date=D(2024, 1, 17), discharge_date=D(2024, 1, 18)),
     ("readmit", 400_000)),
    ("q3", dict(person_id="q", admit_date=D(2024, 2, 2), discharge_date=D(2024, 2, 3)),
     ("normal", 800_000)),
    # special review is final: rv is followed by s1 (8 days) and keeps its 55.5 points; it is
    # still a stay of the group, so s0 (discharged 3/1, rv admitted 3/10) is halved.
    ("s0", dict(person_id="s", admit_date=D(2024, 2, 25), discharge_date=D(2024, 3, 1)),
     ("readmit", 400_000)),
    ("s1", dict(person_id="s", admit_date=D(2024, 3, 20), discharge_date=D(2024, 3, 21)),
     ("normal", 800_000)),
    ("rv", dict(person_id="s", admit_date=D(2024, 3, 10), discharge_date=D(2024, 3, 12)),
     ("review", 555_000)),
]


@EVALUATORS
def test_readmission_is_any_later_stay_at_any_hospital(evaluate):
    table = claims(*({"claim_id": cid, "drg": "A", "total": 8000, **f} for cid, f, _ in STAYS))
    assert scored(inpatient_pool(), table, evaluate) == {cid: want for cid, _, want in STAYS}


@EVALUATORS
def test_readmission_does_not_depend_on_row_order(evaluate):
    rows = [{"claim_id": cid, "drg": "A", "total": 8000, **f} for cid, f, _ in STAYS]
    forward = scored(inpatient_pool(), claims(*rows), evaluate)
    assert scored(inpatient_pool(), claims(*reversed(rows)), evaluate) == forward


# -- fund due by the point-value form ----------------------------------------------------------

GROUPS = dict(base_points=(("B100", 100 * PT), ("B200", 200 * PT)),
              avg_cost=(("B100", 400_000), ("B200", 600_000)))


def two_hospitals(*extra):
    return claims({"claim_id": "c1", "hospital_id": "h1", "drg": "B100", "total": 400_000,
                   "psn_part_amt": 100_000},
                  {"claim_id": "c2", "hospital_id": "h2", "drg": "B200", "total": 600_000,
                   "psn_part_amt": 100_000}, *extra)


@EVALUATORS
def test_budget_only_fund_due_is_the_value(evaluate):
    # PV = 900,000 / 300 = 3,000 fen: V = 300,000 | 600,000, the fund money itself: D = V.
    pool = Pool("inp", 900_000, **GROUPS, point_value=PointValue(BUDGET_ONLY))
    h, p = settled(pool, two_hospitals(), evaluate)
    assert [(h[k]["value"], h[k]["hifp_pay"]) for k in ("h1", "h2")] == [
        (300_000, 300_000), (600_000, 600_000)]
    assert p["hifp_pay"] == 900_000


@EVALUATORS
def test_budget_plus_paid_fund_due_is_value_less_patient_paid(evaluate):
    # PV = (900,000 + 200,000) / 300: V = 366,667 | 733,333 (h2's remainder .33 < h1's .67),
    # D = V − 100,000 each; Σ D = 900,000, the budget.
    pool = Pool("inp", 900_000, **GROUPS)
    h, p = settled(pool, two_hospitals(), evaluate)
    assert [h[k]["hifp_pay"] for k in ("h1", "h2")] == [266_667, 633_333]
    assert p["hifp_pay"] == 900_000 and p["distributed"] == 1_100_000


@EVALUATORS
def test_baseline_reports_its_budget_deviation(evaluate):
    # 75% at 3,000 fen + 25% × (1,200,000 / 300 = 4,000) = 3,250 fen a point:
    # Σ V = 975,000 where the floating form distributes 1,200,000: deviation −225,000.
    # The floating form is budget / points: D = V (no patient payments off).
    pv = PointValue(BASELINE, baseline_value=3_000 * 1_000_000, baseline_share=750_000)
    pool = Pool("inp", 1_200_000, **GROUPS, point_value=pv)
    h, p = settled(pool, two_hospitals(), evaluate)
    assert p["budget_deviation"] == -225_000 and p["distributed"] == 975_000
    assert [h[k]["hifp_pay"] for k in ("h1", "h2")] == [325_000, 650_000]
    assert p["hifp_pay"] == p["fund_amt"] + p["budget_deviation"] == 975_000


# -- ungrouped claims are not charged ----------------------------------------------------------

@EVALUATORS
def test_ungrouped_claims_stay_out_of_the_pool_and_await_review(evaluate):
    # h3's only claim did not group (0000): 68,890 fen patient-paid, 100,000 total. It is out
    # of P and of h3's patient-paid: h3 is owed 0 (not −68,890) and lists the claim as
    # awaiting special review. PV = (900,000 + 200,000) / 300 as without it.
    x = {"claim_id": "x", "hospital_id": "h3", "drg": "0000", "total": 100_000,
         "psn_part_amt": 68_890}
    h, p = settled(Pool("inp", 900_000, **GROUPS), two_hospitals(x), evaluate)
    assert (h["h3"]["value"], h["h3"]["psn_part_amt"], h["h3"]["hifp_pay"]) == (0, 0, 0)
    assert (h["h3"]["pending_review_claims"], h["h3"]["pending_review_amt"]) == (1, 100_000)
    assert (h["h3"]["claims"], h["h3"]["medfee_sumamt"]) == (1, 0)
    assert (p["psn_part_amt"], p["point_value"]) == (200_000, "11000/3")
    assert (p["pending_review_claims"], p["pending_review_amt"]) == (1, 100_000)


@EVALUATORS
def test_ungrouped_claims_stay_out_of_the_fund_cost(evaluate):
    # sharing: A = 300,000 + 500,000 (the ungrouped 31,110 fund cost of h3 is not in it);
    # budget 1,000,000: surplus 200,000 kept at 50% -> G = 900,000.
    x = {"claim_id": "x", "hospital_id": "h3", "drg": "0000", "total": 100_000,
         "psn_part_amt": 68_890}
    pool = Pool("inp", 1_000_000, **GROUPS, point_value=PointValue(BUDGET_ONLY),
                sharing=RiskSharing(500_000, 500_000))
    h, p = settled(pool, two_hospitals(x), evaluate)
    assert (p["fund_cost"], p["shared_amt"], p["fund_amt"]) == (800_000, 100_000, 900_000)
    assert h["h3"]["hifp_pay"] == 0


# -- a negative amount is split as its magnitude, then negated ---------------------------------

@EVALUATORS
def test_mirror_surplus_and_overrun_land_on_the_same_hospitals(evaluate):
    # Three hospitals of 100 points each, fund cost 0 (patients paid everything).
    # Surplus 100 fen kept in full: 33.33 each, the spare fen to h1 (ties by hospital_id);
    # the mirror overrun of 100 fen borne in full: −33.33 each, the spare −1 to h1 as well.
    rows = [{"claim_id": f"c{i}", "hospital_id": f"h{i}", "drg": "B100", "total": 400_000,
             "psn_part_amt": 400_000} for i in (3, 1, 2)]
    for budget, want in ((100, [34, 33, 33]), (-100, [-34, -33, -33])):
        pool = Pool("inp", budget, **GROUPS, point_value=PointValue(BUDGET_ONLY),
                    sharing=RiskSharing(1_000_000, 1_000_000))
        h, p = settled(pool, claims(*rows), evaluate)
        assert p["shared_amt"] == budget
        assert [h[k]["shared_amt"] for k in ("h1", "h2", "h3")] == want
        assert [h[k]["value"] for k in ("h1", "h2", "h3")] == want


def test_negative_split_is_the_mirror_of_the_positive_one():
    from yibao.core.points.settle import largest_remainder
    shares = {"h2": Fraction(7, 3), "h1": Fraction(7, 3), "h3": Fraction(16, 3)}
    plus = largest_remainder(shares)
    minus = largest_remainder({k: -v for k, v in shares.items()})
    assert minus == {k: -v for k, v in plus.items()}
    assert reference.apportion({k: -v for k, v in shares.items()}) == minus


def test_a_cost_too_large_to_score_names_the_claim():
    # r is compared as cost × 10^6 in int64; before, the product wrapped silently
    table = claims({"claim_id": "big", "drg": "A", "total": 10**13})
    with pytest.raises(OverflowError, match="claim big"):
        claim_points(PointsPlan((inpatient_pool(),)), "inp", table)
