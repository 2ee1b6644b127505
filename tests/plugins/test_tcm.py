"""The tcm plugin: tcm_share / tcm_uplift exact and usable in a policy (kernel and reference),
the tcm_amount validator, and the provider-side tcm_tilt adjustment run by core/points."""
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from yibao.core.engine import settle
from yibao.core.plan import RATIO_SCALE, Plan
from yibao.core.points import reference as points_reference
from yibao.core.points.compute import claim_points, settle_providers
from yibao.core.points.plan import POINT_SCALE as PT, PointsPlan, Pool, RiskSharing
from yibao.plugins.tcm import points as tcm_points, tcm_share, tcm_uplift

from plugin_helpers import both, by_claim, claim_rows, claims, compile_policy_text, shipped_registry

YUAN = 100
TCM_POLICY = """
attribute tcm_amount: money
layer basic "基本医保(中医倾斜)" {
  base in_scope - self_first
  ratio 68% + tcm_uplift(tcm_amount, in_scope, 10%)
}
"""
SHARE_POLICY = """
attribute tcm_amount: money
layer tcm_part "中医部分" {
  base in_scope * tcm_share(tcm_amount, in_scope)
}
"""


def half_up(x: Fraction) -> int:
    q, r = divmod(x.numerator, x.denominator)
    return q + (2 * r >= x.denominator)


@settings(max_examples=300, deadline=None)
@given(st.integers(-10**9, 10**11), st.integers(-5, 10**11), st.integers(0, RATIO_SCALE))
def test_tcm_share_and_uplift_are_exact_half_up(tcm, scope, rate):
    share = tcm_share(np.array([tcm]), np.array([scope]), n=1)[0]
    uplift = tcm_uplift(np.array([tcm]), np.array([scope]), np.array([rate]), n=1)[0]
    if scope <= 0:
        assert share == 0 and uplift == 0
        return
    part = min(max(tcm, 0), scope)
    assert share == half_up(Fraction(part * RATIO_SCALE, scope))
    assert uplift == half_up(Fraction(part * rate, scope))
    assert 0 <= share <= RATIO_SCALE


def test_tcm_uplift_raises_the_ratio_in_a_policy():
    plan = compile_policy_text(TCM_POLICY)
    t = claims({"claim_id": "a", "person_id": "p", "total": 10_000 * YUAN,
                "tcm_amount": 3_000 * YUAN},                       # share 30% → +3%
               {"claim_id": "b", "person_id": "p", "total": 10_000 * YUAN, "tcm_amount": 0},
               {"claim_id": "c", "person_id": "p", "total": 3 * YUAN, "tcm_amount": 1 * YUAN})
    for res in both(plan, t):
        pay = by_claim(res, "basic")
        assert pay["a"] == 7_100 * YUAN and pay["b"] == 6_800 * YUAN
        # c: 1/3 × 10% = 33,333 millionths (half-up) → 68% + 3.3333% of 300 fen = 213.9999 → 214
        assert pay["c"] == 214
    for res in both(compile_policy_text(SHARE_POLICY), t):
        # c: 300 fen × 333,333 millionths = 99.9999 → 100 fen
        assert by_claim(res, "tcm_part") == {"a": 3_000 * YUAN, "b": 0, "c": 100}


@settings(max_examples=40, deadline=None)
@given(claim_rows())
def test_tcm_policy_kernel_equals_reference(rows):
    kernel, reference = both(compile_policy_text(TCM_POLICY), claims(*rows))
    assert kernel.equals(reference)


def test_tcm_amount_out_of_range_is_rejected():
    plan = compile_policy_text(TCM_POLICY)
    t = claims({"claim_id": "a", "person_id": "p", "total": 100, "tcm_amount": 101},
               {"claim_id": "b", "person_id": "p", "total": 100, "tcm_amount": 100})
    out = settle(plan, t, shipped_registry())
    assert out.rejects.column("reason").to_pylist() == ["tcm_amount_out_of_range"]
    assert out.results.column("claim_id").to_pylist() == ["b"]


# -- provider side: tcm_tilt -------------------------------------------------------------------

def pool():
    return Pool("inp", budget=1_000_000, base_points=(("A", 100 * PT),), avg_cost=(("A", 10_000),),
                sharing=RiskSharing(keep=500_000, bear=500_000))


def tilt(**over):
    kw = dict(groups=(("TCM1", 120 * PT),), avg_cost=(("TCM1", 9_000),),
              institution_factor=1_100_000, separate_budget=300_000, keep=800_000, bear=200_000)
    kw.update(over)
    return tcm_points.TcmTilt(**kw)




def test_tcm_tilt_is_registered_and_rewrites_the_points_plan():
    adj = shipped_registry().adjustments["tcm_tilt"]
    assert adj.plugin == "tcm" and adj.params is tcm_points.TcmTilt
    out = adj.apply(PointsPlan((pool(),)), tilt())
    tcm, rest = out.pools
    assert (tcm.name, tcm.budget, rest.name, rest.budget) == ("inp_tcm", 300_000, "inp", 700_000)
    assert (tcm.sharing.keep, tcm.sharing.bear) == (800_000, 200_000)
    assert rest.sharing == pool().sharing
    assert dict(tcm.base_points)["TCM1"] == 120 * PT
    assert [a.name for a in tcm.adjustments] == ["tcm_institution"]
    # the figures are plan data: the rewritten plan and the tilt round-trip through JSON
    assert PointsPlan.from_json(out.to_json()) == out
    assert tcm_points.apply(PointsPlan((pool(),)), tcm_points.TcmTilt()) == PointsPlan((pool(),))


def test_tcm_tilt_scores_and_clears_on_core_points_vector_and_reference():
    import pyarrow as pa
    rows = [
        {"claim_id": "c1", "hospital_id": "h_tcm", "hospital_tcm": True, "hospital_level": 2, "drg": "TCM1",
         "total": 9_000, "psn_part_amt": 1_000},
        {"claim_id": "c2", "hospital_id": "h_tcm", "hospital_tcm": True, "hospital_level": 2, "drg": "A",
         "total": 10_000, "psn_part_amt": 1_000},
        {"claim_id": "c3", "hospital_id": "h_gen", "hospital_tcm": False, "hospital_level": 2, "drg": "A",
         "total": 10_000, "psn_part_amt": 1_000},
    ]
    t = pa.Table.from_pylist(rows)
    plan = tcm_points.apply(PointsPlan((pool(),)), tilt())
    scored = {p.name: claim_points(plan, p, t) for p in plan.pools}
    assert scored["inp_tcm"]["points"].to_pylist() == [132 * PT, 110 * PT]  # ×1.1
    assert scored["inp"]["points"].to_pylist() == [100 * PT]
    for p in plan.pools:
        ref = points_reference.claim_points(plan, p, rows)
        assert [r["points"] for r in ref] == scored[p.name]["points"].to_pylist()
    all_scored = pa.concat_tables(list(scored.values()))
    hospitals, pools = settle_providers(plan, t, all_scored)
    assert pools["pool"].to_pylist() == ["inp_tcm", "inp"]
    assert pools["budget"].to_pylist() == [300_000, 700_000]
    ref_h, ref_p = points_reference.settle(plan, rows, all_scored.to_pylist())
    assert [r["fund_amt"] for r in ref_p] == pools["fund_amt"].to_pylist()
    assert [r["setl_amt"] for r in ref_h] == hospitals["setl_amt"].to_pylist()


@pytest.mark.parametrize("bad, message", [
    (dict(groups=(("A", 1),)), "already has base points"),
    (dict(separate_budget=2_000_000), "outside pool"),
    (dict(pools=("nope",)), "no pool named"),
])
def test_tcm_tilt_rejects_inconsistent_figures(bad, message):
    with pytest.raises(ValueError, match=message):
        tcm_points.apply(PointsPlan((pool(),)), tilt(**bad))
