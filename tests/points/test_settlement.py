"""Golden, hand-checked provider settlement for every point-value and sharing rule (§3).

The batch: hospital h1 has one claim of 100 points, h2 one of 200 points (groups B100 and
B200, cost = the group's average so both are normal). Every figure below is in fen."""
import pytest

from yibao.core.points import reference
from yibao.core.points.compute import all_claim_points, settle_providers
from yibao.core.points.plan import (
    BASELINE, BUDGET_ONLY, POINT_SCALE as PT, Capitation, PointsPlan, PointValue, Pool,
    RiskSharing)
from yibao.core.points.settle import largest_remainder

from points_helpers import claims

GROUPS = dict(base_points=(("B100", 100 * PT), ("B200", 200 * PT), ("B50", 50 * PT)),
              avg_cost=(("B100", 400_000), ("B200", 600_000), ("B50", 1)))


def batch(paid=(500, 1000), totals=(400_000, 600_000), extra=()):
    return claims({"claim_id": "c1", "hospital_id": "h1", "drg": "B100", "total": totals[0],
                   "psn_part_amt": paid[0]},
                  {"claim_id": "c2", "hospital_id": "h2", "drg": "B200", "total": totals[1],
                   "psn_part_amt": paid[1]}, *extra)


def settle(pool, table, evaluate="vector"):
    plan = PointsPlan((pool,))
    if evaluate == "reference":
        rows = table.to_pylist()
        hosp, pools = reference.settle(plan, rows, reference.claim_points(plan, pool, rows))
    else:
        h, p = settle_providers(plan, table, all_claim_points(plan, table))
        hosp, pools = h.to_pylist(), p.to_pylist()
    return {r["fixmedins_code"]: r for r in hosp}, pools[0]


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
    # shared by points 63,333.33 | 126,666.67.
    h, p = settle(jinhua(1_000_000), batch(**PAID), evaluate)
    assert (p["fund_cost"], p["shared_amt"], p["fund_amt"]) == (800_000, 190_000, 990_000)
    assert (h["h1"]["value"], h["h2"]["value"]) == (330_000, 660_000)
    assert (h["h1"]["shared_amt"], h["h2"]["shared_amt"]) == (63_333, 126_667)
    assert (h["h1"]["hifp_pay"], h["h2"]["hifp_pay"]) == (230_000, 560_000)


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
