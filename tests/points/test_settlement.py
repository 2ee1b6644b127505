"""Golden, hand-checked provider settlement for every point-value and sharing rule (§3).

The batch: hospital h1 has one claim of 100 points, h2 one of 200 points (groups B100 and
B200, cost = the group's average so both are normal). Every figure below is in fen."""
import datetime as dt

import pyarrow as pa
import pytest

from yibao.core.points import reference
from yibao.core.points.compute import all_claim_points, settle_providers
from yibao.core.points.plan import (
    BASELINE, BUDGET_ONLY, POINT_SCALE as PT, Capitation, PointsPlan, PointValue, Pool,
    RiskSharing)
from yibao.core.points.settle import largest_remainder

from points_helpers import claims, settled as settle

GROUPS = dict(base_points=(("B100", 100 * PT), ("B200", 200 * PT), ("B50", 50 * PT)),
              avg_cost=(("B100", 400_000), ("B200", 600_000), ("B50", 1)))


def batch(paid=(500, 1000), totals=(400_000, 600_000), extra=()):
    return claims({"claim_id": "c1", "hospital_id": "h1", "drg": "B100", "total": totals[0],
                   "psn_part_amt": paid[0]},
                  {"claim_id": "c2", "hospital_id": "h2", "drg": "B200", "total": totals[1],
                   "psn_part_amt": paid[1]}, *extra)




EVALUATORS = pytest.mark.parametrize("evaluate", ["vector", "reference"])


@EVALUATORS
def test_zhejiang_budget_plus_paid(evaluate):
    # PV = (1,000,000 + 1,500) / 300 points; V = 333,833.33 | 667,666.67 -> the spare fen goes
    # to the larger remainder (h2). D = V − paid; h1 prepaid 300,000.
    pool = Pool("inp", 1_000_000, **GROUPS, prepaid=(("h1", 300_000),))
    h, p = settle(pool, batch(), evaluate)
    assert (h["h1"]["value"], h["h2"]["value"]) == (333_833, 667_667)
    assert (h["h1"]["hifp_pay"], h["h2"]["hifp_pay"]) == (333_333, 666_667)
    assert (h["h1"]["setl_amt"], h["h2"]["setl_amt"]) == (33_333, 666_667)
    assert p["point_value"] == "10015/3" and p["distributed"] == 1_001_500


@EVALUATORS
def test_reserve_five_percent(evaluate):
    # reserve 50,000; PV = (950,000 + 1,500) / 300: 317,166.67 | 634,333.33 -> h1 gets the fen.
    pool = Pool("inp", 1_000_000, **GROUPS, reserve_share=50_000)
    h, p = settle(pool, batch(), evaluate)
    assert (p["reserve"], p["fund_amt"]) == (50_000, 950_000)
    assert (h["h1"]["value"], h["h2"]["value"]) == (317_167, 634_333)


@EVALUATORS
def test_budget_only(evaluate):
    # PV = 1,000,000 / 300: 333,333.33 | 666,666.67
    pool = Pool("inp", 1_000_000, **GROUPS, point_value=PointValue(BUDGET_ONLY))
    h, p = settle(pool, batch(), evaluate)
    assert (h["h1"]["value"], h["h2"]["value"]) == (333_333, 666_667)
    assert p["distributed"] == 1_000_000


@EVALUATORS
def test_shanghai_baseline_and_floating(evaluate):
    # 75% of each point at the baseline 3,000 fen, 25% floating at 1,200,000 / 300 = 4,000:
    # PV = 2,250 + 1,000 = 3,250 fen per point.
    pv = PointValue(BASELINE, baseline_value=3_000 * 1_000_000, baseline_share=750_000)
    pool = Pool("inp", 1_200_000, **GROUPS, point_value=pv)
    h, p = settle(pool, batch(), evaluate)
    assert p["point_value"] == "3250/1" and p["point_value_e6"] == 3_250_000_000
    assert (h["h1"]["value"], h["h2"]["value"], p["distributed"]) == (325_000, 650_000, 975_000)


def jinhua(budget):
    return Pool("opd", budget, **GROUPS, point_value=PointValue(BUDGET_ONLY),
                sharing=RiskSharing(keep=950_000, bear=950_000))


# Fund cost A: (400,000 − 100,000) + (600,000 − 100,000) = 800,000.
PAID = dict(paid=(100_000, 100_000))


@EVALUATORS
def test_jinhua_surplus_kept_95(evaluate):
    # budget 1,000,000: surplus 200,000, 95% kept = 190,000, G = 990,000 (3,300 per point);
    # shared by points 63,333.33 | 126,666.67. Under budget / points the points carry fund
    # money only, so fund due is the value itself (patients' 100,000 each not taken off again).
    h, p = settle(jinhua(1_000_000), batch(**PAID), evaluate)
    assert (p["fund_cost"], p["shared_amt"], p["fund_amt"]) == (800_000, 190_000, 990_000)
    assert (h["h1"]["value"], h["h2"]["value"]) == (330_000, 660_000)
    assert (h["h1"]["shared_amt"], h["h2"]["shared_amt"]) == (63_333, 126_667)
    assert (h["h1"]["hifp_pay"], h["h2"]["hifp_pay"]) == (330_000, 660_000)
    assert p["hifp_pay"] == p["fund_amt"] == 990_000


@EVALUATORS
def test_jinhua_overrun_borne_95(evaluate):
    # budget 600,000: overrun 200,000, 95% borne = 190,000, G = 610,000.
    h, p = settle(jinhua(600_000), batch(**PAID), evaluate)
    assert (p["shared_amt"], p["fund_amt"]) == (-190_000, 610_000)
    assert (h["h1"]["value"], h["h2"]["value"]) == (203_333, 406_667)
    assert (h["h1"]["shared_amt"], h["h2"]["shared_amt"]) == (-63_333, -126_667)


@EVALUATORS
@pytest.mark.parametrize("insured, shared, values", [
    (100, -60_000, (246_667, 493_333)),  # control 500,000: overrun 300,000 × 20%, G 740,000
    (200, 40_000, (280_000, 560_000)),  # control 1,000,000: surplus 200,000 × 20%, G 840,000
])
def test_rizhao_20_percent_against_per_head_control(evaluate, insured, shared, values):
    pool = Pool("town", 0, **GROUPS, point_value=PointValue(BUDGET_ONLY),
                sharing=RiskSharing(200_000, 200_000, per_head=5_000, insured=insured))
    h, p = settle(pool, batch(**PAID), evaluate)
    assert (p["control_total"], p["shared_amt"]) == (5_000 * insured, shared)
    assert (h["h1"]["value"], h["h2"]["value"]) == values


@EVALUATORS
def test_capitation_signed_claims_paid_from_the_institution(evaluate):
    # Unsigned: 300 points, F = 300,000 -> PV 1,000. A person signed with h1 is treated at h2
    # for 50 points: h2 earns 50,000 more, charged to h1's 10 × 10,000 capitation budget.
    signed = {"claim_id": "c3", "hospital_id": "h2", "drg": "B50", "total": 1,
              "signed_inst": "h1"}
    pool = Pool("opd", 300_000, **GROUPS, point_value=PointValue(BUDGET_ONLY),
                capitation=Capitation(10_000, (("h1", 10),)))
    h, p = settle(pool, batch(paid=(0, 0), extra=(signed,)), evaluate)
    assert (h["h1"]["value"], h["h2"]["value"]) == (100_000, 250_000)
    assert (h["h1"]["capitation_used"], h["h1"]["capitation_balance"]) == (50_000, 50_000)
    assert h["h1"]["setl_amt"] == 150_000 and p["points_pv"] == 300 * PT


def test_largest_remainder_ties_go_to_the_smallest_hospital_id():
    from fractions import Fraction
    thirds = {h: Fraction(100, 3) for h in ("h3", "h1", "h2")}
    assert largest_remainder(thirds) == {"h1": 34, "h2": 33, "h3": 33}
    assert reference.apportion(thirds) == {"h1": 34, "h2": 33, "h3": 33}


# -- per-hospital budgets (Rizhao) -------------------------------------------------------------
# Fund cost A = total − paid: h1 399,500 (100 points), h2 599,000 (200 points).

@EVALUATORS
def test_rizhao_per_hospital_budgets_surplus_and_overrun(evaluate):
    # h1 budget 500,000: surplus 100,500, keeps 20% = 20,100 -> G1 = 419,600, V1 = G1 + 500.
    # h2 budget 500,000: overrun 99,000, bears 20% = 19,800 -> G2 = 579,200, V2 = G2 + 1,000.
    # Points do not move money between them (split by points h1 would get a third).
    pool = Pool("inp", 1_000_000, **GROUPS, sharing=RiskSharing(200_000, 200_000),
                hospital_budgets=(("h1", 500_000), ("h2", 500_000)))
    h, p = settle(pool, batch(), evaluate)
    assert (h["h1"]["budget"], h["h2"]["budget"]) == (500_000, 500_000)
    assert (h["h1"]["shared_amt"], h["h2"]["shared_amt"]) == (20_100, -19_800)
    assert (h["h1"]["value"], h["h2"]["value"]) == (420_100, 580_200)
    assert (h["h1"]["hifp_pay"], h["h2"]["hifp_pay"]) == (419_600, 579_200)
    assert (p["control_total"], p["shared_amt"], p["fund_amt"]) == (1_000_000, 300, 998_800)
    assert p["point_value"] == "10003/3" and p["distributed"] == 1_000_300


@EVALUATORS
def test_per_hospital_budgets_reserve_rounding_and_a_hospital_without_claims(evaluate):
    # PV = budget / points. Reserve 5% of each budget; h3 has a budget and no claims.
    # h1: 500,000 − 25,000 − 399,500 = 75,500 -> +15,100; G1 = V1 = D1 = 414,600.
    # h2: 475,000 − 599,000 = −124,000 -> −24,800; G2 = V2 = D2 = 574,200.
    # (budget / points: V is fund money only, so D = V; patients' 500 / 1,000 not taken off.)
    # h3: 10,001 − round(500.05) = 9,501 surplus -> round(1,900.2) = 1,900 = V3 = D3.
    pool = Pool("inp", 0, **GROUPS, point_value=PointValue(BUDGET_ONLY), reserve_share=50_000,
                sharing=RiskSharing(200_000, 200_000),
                hospital_budgets=(("h1", 500_000), ("h2", 500_000), ("h3", 10_001)))
    h, p = settle(pool, batch(), evaluate)
    assert [h[k]["shared_amt"] for k in ("h1", "h2", "h3")] == [15_100, -24_800, 1_900]
    assert [h[k]["value"] for k in ("h1", "h2", "h3")] == [414_600, 574_200, 1_900]
    assert [h[k]["hifp_pay"] for k in ("h1", "h2", "h3")] == [414_600, 574_200, 1_900]
    assert h["h3"]["claims"] == 0 and h["h3"]["budget"] == 10_001
    assert (p["control_total"], p["reserve"], p["shared_amt"], p["fund_amt"]) == (
        1_010_001, 50_500, -7_800, 990_700)


@EVALUATORS
def test_per_hospital_budget_without_sharing_pays_the_budget(evaluate):
    # no sharing: each hospital is paid its own budget (h2's 500,000, not its 599,000 cost).
    pool = Pool("inp", 0, **GROUPS, point_value=PointValue(BUDGET_ONLY),
                hospital_budgets=(("h1", 300_000), ("h2", 500_000)))
    h, _ = settle(pool, batch(), evaluate)
    assert (h["h1"]["value"], h["h2"]["value"]) == (300_000, 500_000)
    assert (h["h1"]["shared_amt"], h["h2"]["shared_amt"]) == (-99_500, -99_000)


def test_pool_sharing_rows_have_no_own_budget():
    h, _ = settle(Pool("inp", 1_000_000, **GROUPS), batch())
    assert h["h1"]["budget"] is None and h["h1"]["prepay_below"] == []


# -- monthly prepayments ---------------------------------------------------------------------

@EVALUATORS
def test_monthly_prepayments_floor_and_settlement(evaluate):
    # As test_zhejiang_budget_plus_paid: D1 = 333,333, D2 = 666,667. c1 (h1) is discharged in
    # January (due 399,500, floor 85% = 339,575), c2 (h2) in February (due 599,000).
    # h1 prepaid exactly the floor in January and 1,000 in February (no due): no finding.
    # h2 prepaid 600,000 in January and nothing in February: February is below the floor
    # although the year's prepayment exceeds the due. h3 prepaid without claims.
    b = batch().set_column(10, "discharge_date", pa.array(
        [dt.date(2024, 1, 3), dt.date(2024, 2, 15)], pa.date32()))
    pool = Pool("inp", 1_000_000, **GROUPS, prepayments=(
        ("h1", "2024-01", 339_575), ("h1", "2024-02", 1_000), ("h2", "2024-01", 600_000),
        ("h3", "2024-01", 5_000)))
    h, _ = settle(pool, b, evaluate)
    assert [h[k]["prepaid"] for k in ("h1", "h2", "h3")] == [340_575, 600_000, 5_000]
    assert [h[k]["prepay_below"] for k in ("h1", "h2", "h3")] == [[], ["2024-02"], []]
    assert [h[k]["setl_amt"] for k in ("h1", "h2", "h3")] == [-7_242, 66_667, -5_000]


@EVALUATORS
def test_prepayment_one_fen_below_the_floor_is_a_finding(evaluate):
    # h1 January due 399,500: 339,574 < 339,575.
    pool = Pool("inp", 1_000_000, **GROUPS, prepayments=(("h1", "2024-01", 339_574),))
    h, _ = settle(pool, batch(), evaluate)
    assert h["h1"]["prepay_below"] == ["2024-01"] and h["h2"]["prepay_below"] == ["2024-01"]


def test_unmerged_month_sums_are_refused():
    from yibao.core.points.settle import settle_pool
    pool = Pool("inp", 1_000_000, **GROUPS, prepayments=(("h1", "2024-01", 1),))
    row = {"points": 1, "points_pv": 1, "paid": 0, "paid_pv": 0, "total": 5, "cost_pv": 5,
           "n": 2, "n_m": 1, "due:2024-01": 5}
    with pytest.raises(ValueError, match="merged"):
        settle_pool(pool, {"h1": row}, {})


def test_prepayments_given_with_the_run():
    from yibao.core.points.prepay import with_prepayments
    plan = PointsPlan((Pool("inp", 1_000_000, **GROUPS),))
    table = pa.table({"hospital_id": ["h1", "h2"], "month": ["2024-01", "2024-01"],
                      "prepaid": pa.array([339_575, 1], pa.int64())})
    plan = with_prepayments(plan, table)
    assert plan.pools[0].prepayments == (("h1", "2024-01", 339_575), ("h2", "2024-01", 1))
    h, p = settle_providers(plan, batch(), all_claim_points(plan, batch()))
    rows = {r["fixmedins_code"]: r for r in h.to_pylist()}
    assert rows["h1"]["prepay_below"] == [] and rows["h2"]["prepay_below"] == ["2024-01"]
    assert rows["h1"]["setl_amt"] == 333_333 - 339_575
    for bad in ({"month": ["2024-1"]}, {"prepaid": pa.array([-1], pa.int64())},
                {"pool": ["nope"]}):
        cols = {"hospital_id": ["h1"], "month": ["2024-01"], "prepaid": pa.array([1], pa.int64()),
                **bad}
        with pytest.raises(ValueError):
            with_prepayments(plan, pa.table(cols))
