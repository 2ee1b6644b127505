"""Issue 17 item 3: 医共体 package budgets (Rizhao's 一个框架) across pools. An alliance's
residents' points, wherever treated, are valued at each pool's point value and held against the
alliance's per-head budget; it keeps a share of a surplus and bears a share of an overrun.
Hand-checked cases on both evaluators, then Hypothesis: vector == reference, row order and
partitioning by person do not matter."""
import datetime as dt

import pyarrow as pa
import pytest
from hypothesis import given, settings, strategies as st

from yibao.core import provider
from yibao.core.points import reference
from yibao.core.points.compute import (
    alliance_sums, all_claim_points, hospital_sums, settle_providers)
from yibao.core.points.plan import (
    BUDGET_ONLY, POINT_SCALE as PT, Alliance, FixedRate, PointsPlan, PointValue, Pool,
    RiskSharing, Test)

from points_helpers import COLUMNS, DEFAULTS, inpatient_pool

EVALUATORS = pytest.mark.parametrize("evaluate", ["vector", "reference"])
GROUPS = dict(base_points=(("B100", 100 * PT), ("B200", 200 * PT)),
              avg_cost=(("B100", 400_000), ("B200", 600_000)))
COUNTY = Alliance("county", "alliance", per_head=1_000, members=(("Y1", 300), ("Y2", 50)),
                  pools=("inp",), keep=1_000_000, bear=600_000)


def claims(*rows) -> pa.Table:
    cols = {**COLUMNS, "alliance": pa.string()}
    full = [{**DEFAULTS, "alliance": None, **r} for r in rows]
    return pa.table({c: pa.array([r.get(c) for r in full], t) for c, t in cols.items()})


def batch():
    return claims({"claim_id": "c1", "hospital_id": "h1", "drg": "B100", "total": 400_000,
                   "psn_part_amt": 500, "alliance": "Y1"},
                  {"claim_id": "c2", "hospital_id": "h2", "drg": "B200", "total": 600_000,
                   "psn_part_amt": 1000})


def settle(plan, t, evaluate):
    if evaluate == "reference":
        rows = t.to_pylist()
        scored = [s for p in plan.pools for s in reference.claim_points(plan, p, rows)]
        hosp, pools = reference.settle(plan, rows, scored)
    else:
        h, p = settle_providers(plan, t, all_claim_points(plan, t))
        hosp, pools = h.to_pylist(), p.to_pylist()
    return ({(r["pool"], r["fixmedins_code"]): r for r in hosp}, {r["pool"]: r for r in pools})


@EVALUATORS
@pytest.mark.parametrize("form", [PointValue(BUDGET_ONLY), PointValue()])
def test_alliance_bears_its_residents_overrun(evaluate, form):
    # PV = 1,000,000 / 300 points (budget / points), or (1,000,000 + 1,500) / 300 with the
    # patients' payments carried and then taken off: either way Y1's resident used
    # 333,333.33 -> 333,333 of fund money at h1. Budget 300 × 10 yuan = 300,000: overrun
    # 33,333, 60% borne = 19,999.8 -> 20,000 taken from Y1. Y2 used nothing: its 50,000 kept.
    plan = PointsPlan((Pool("inp", 1_000_000, **GROUPS, point_value=form),), alliances=(COUNTY,))
    h, p = settle(plan, batch(), evaluate)
    y1, y2 = h["county", "Y1"], h["county", "Y2"]
    assert (y1["budget"], y1["value"], y1["shared_amt"], y1["setl_amt"]) == (
        300_000, 333_333, -20_000, -20_000)
    assert (y1["claims"], y1["points"], y1["psn_part_amt"]) == (1, 100 * PT, 500)
    assert (y2["budget"], y2["value"], y2["shared_amt"]) == (50_000, 0, 50_000)
    assert (p["county"]["budget"], p["county"]["hifp_pay"]) == (350_000, 30_000)
    # the treating hospitals are paid by the pool as before
    assert h["inp", "h1"]["hifp_pay"] == 333_333


@EVALUATORS
def test_residents_treated_anywhere_in_every_listed_pool(evaluate):
    # two pools, both budget / points: inp PV 1,000,000 / 100 (c1 only: c2 is level 1) and
    # out PV 90,000 / 200. Y1's residents: c1 at h1 in inp (100 points -> 1,000,000) and c2
    # at h9 in out (200 points -> 90,000): used 1,090,000 against 300,000: overrun 790,000,
    # 60% = 474,000 borne. The ungrouped c3 (no group) does not count.
    inp = Pool("inp", 1_000_000, **GROUPS, point_value=PointValue(BUDGET_ONLY),
               applies=(Test("hospital_level", ">=", 2),))
    out = Pool("out", 90_000, **GROUPS, point_value=PointValue(BUDGET_ONLY),
               applies=(Test("hospital_level", "==", 1),))
    alliance = Alliance("county", "alliance", 1_000, (("Y1", 300),), ("inp", "out"),
                        1_000_000, 600_000)
    t = claims({"claim_id": "c1", "hospital_id": "h1", "drg": "B100", "total": 400_000,
                "alliance": "Y1"},
               {"claim_id": "c2", "hospital_id": "h9", "hospital_level": 1, "drg": "B200",
                "total": 600_000, "alliance": "Y1"},
               {"claim_id": "c3", "hospital_id": "h9", "hospital_level": 1, "drg": "X",
                "total": 5, "alliance": "Y1"})
    h, p = settle(PointsPlan((inp, out), alliances=(alliance,)), t, evaluate)
    y1 = h["county", "Y1"]
    assert (y1["claims"], y1["value"], y1["shared_amt"]) == (2, 1_090_000, -474_000)


# -- generated: vector == reference, order and partitioning -----------------------------------

rows = st.lists(st.fixed_dictionaries({
    "person_id": st.sampled_from(["p", "q", "r"]),
    "hospital_id": st.sampled_from(["h1", "h2", "h3"]),
    "hospital_level": st.integers(1, 3),
    "drg": st.sampled_from(["A", "M", "H", "Q", "R", "0000", None]),
    "total": st.integers(0, 200_000),
    "psn_part_amt": st.integers(0, 5_000),
    "alliance": st.sampled_from(["Y1", "Y2", "Y9", None]),
    "admit": st.integers(0, 30),
}), max_size=25)

alliances = st.sampled_from([
    Alliance("county", "alliance", 700, (("Y1", 40), ("Y2", 3)), ("inp", "out"), 1_000_000,
             600_000),
    Alliance("county", "alliance", 1, (("Y2", 1),), ("out",), 333_333, 1_000_000),
    Alliance("county", "hospital_id", 90_000, (("h1", 1), ("h2", 2)), ("inp",), 200_000,
             200_000),
])
inp_pools = st.sampled_from([
    inpatient_pool(applies=(Test("hospital_level", ">=", 2),)),
    inpatient_pool(applies=(Test("hospital_level", ">=", 2),), point_value=PointValue(BUDGET_ONLY),
                   sharing=RiskSharing(200_000, 200_000),
                   hospital_budgets=(("h1", 90_000), ("h2", 300_000))),
    inpatient_pool(applies=(Test("hospital_level", ">=", 2),),
                   fixed_rates=(FixedRate("h2", 1_234_567_891, 500_000),)),
])
OUT = inpatient_pool(name="out", budget=77_777, point_value=PointValue(BUDGET_ONLY),
                     readmission=None, applies=(Test("hospital_level", "==", 1),))


def table(generated):
    return claims(*({**r, "claim_id": f"c{i:03d}",
                     "admit_date": dt.date(2024, 1, 1) + dt.timedelta(r["admit"]),
                     "discharge_date": dt.date(2024, 1, 1) + dt.timedelta(r["admit"] + 2)}
                    for i, r in enumerate(generated)))


@settings(max_examples=60, deadline=None)
@given(rows, inp_pools, alliances)
def test_vector_equals_reference(generated, inp, alliance):
    plan = PointsPlan((inp, OUT), alliances=(alliance,))
    t = table(generated)
    assert settle(plan, t, "vector") == settle(plan, t, "reference")


@settings(max_examples=40, deadline=None)
@given(rows, inp_pools, alliances, st.integers(1, 3), st.randoms(use_true_random=False))
def test_independent_of_order_and_partitioning(generated, inp, alliance, pieces, rnd):
    plan = PointsPlan((inp, OUT), alliances=(alliance,))
    t = table(generated)
    whole = settle(plan, t, "vector")
    order = list(range(t.num_rows))
    rnd.shuffle(order)
    assert settle(plan, t.take(pa.array(order, pa.int64())), "vector") == whole
    partials = {}
    for k in range(pieces):
        mine = [i for i, r in enumerate(generated) if "pqr".index(r["person_id"]) % pieces == k]
        part = t.take(pa.array(mine, pa.int64()))
        scored = all_claim_points(plan, part)
        sums = {p.name: hospital_sums(p, part, scored, "psn_part_amt", None) for p in plan.pools}
        sums[provider.ALLIANCE_KEY + alliance.name] = (
            alliance_sums(alliance, part, scored, "psn_part_amt"), {})
        partials = provider.merge_partials(partials, sums)
    hosp, pools = provider.settle_partials(_plan_with(plan), partials)
    assert ({(r["pool"], r["fixmedins_code"]): r for r in hosp.to_pylist()},
            {r["pool"]: r for r in pools.to_pylist()}) == whole


def _plan_with(points):
    """A minimal Plan carrying ``points`` as its provider part."""
    import dataclasses
    from yibao.core.plan import Plan
    fields = {f.name for f in dataclasses.fields(Plan)}
    kw = {"name": "t", "region": "", "effective_from": 0, "effective_to": 1, "columns": (),
          "tables": (), "layers": (), "provider": points}
    return Plan(**{k: v for k, v in kw.items() if k in fields})


def test_alliance_round_trips_and_prints():
    plan = PointsPlan((OUT,), alliances=(COUNTY,))
    assert PointsPlan.from_json(plan.to_json()) == plan
    assert ("alliance county: residents by alliance, 1000 fen/head for 2 alliances over pools "
            "inp; keep 1 of surplus, bear 0.6 of overrun") in plan.describe()
