"""Golden, hand-checked points for every case class (point-method.md §2).
Each expected value is worked out in the comment beside it; points are ×10^4."""
import datetime as dt

import pytest

from yibao.core.points import reference
from yibao.core.points.compute import claim_points
from yibao.core.points.plan import PointsPlan

from points_helpers import claims, inpatient_pool

D = dt.date

CASES = [
    # id, claim fields, case class, points, adjustments
    ("n1", dict(drg="A", hospital_level=3, total=8000), "normal", 960_000, []),  # 80 × 1.2
    ("n2", dict(drg="A", total=8000), "normal", 800_000, []),  # k 1 for a missing pair
    ("rq", dict(drg="Q", hospital_level=1, total=1000), "normal", 61_729, []),  # 6.17285 half-up
    ("hA", dict(drg="A", total=28000), "high", 1_200_000, []),  # r 3.5, T 3: 80 + 80 × 0.5
    ("hA3", dict(drg="A", total=24000), "high", 800_000, []),  # r = 3 exactly: 80 + 0
    ("nA", dict(drg="A", total=23999), "normal", 800_000, []),  # r just below 3
    ("hM", dict(drg="M", total=33000), "high", 1_800_000, []),  # r 2.2, T 2: 150 + 150 × 0.2
    ("nM", dict(drg="M", total=24000), "normal", 1_500_000, []),  # r 1.6 < 2
    ("hH", dict(drg="H", total=48000), "high", 3_300_000, []),  # r 1.6, T 1.5: 300 + 300 × 0.1
    ("lA", dict(drg="A", total=3000), "low", 300_000, []),  # r 0.375: 80 × 0.375
    ("lA4", dict(drg="A", total=3200), "low", 320_000, []),  # r = 0.4 exactly: 80 × 0.4
    ("iA", dict(drg="A", hospital_level=3, total=6000, incomplete=True),
     "incomplete", 720_000, []),  # min(80, 80 × 1.2 × 0.75 = 72)
    ("iB", dict(drg="A", hospital_level=3, total=16000, incomplete=True),
     "incomplete", 800_000, []),  # min(80, 80 × 1.2 × 2 = 192)
    ("bd", dict(drg="R", los=70), "bedday", 1_625_000, []),  # 30×2.5 + 30×2.5×.9 + 10×2.5×.8
    ("bd2", dict(drg="R", los=31), "bedday", 772_500, []),  # 75 + 2.25
    ("rv", dict(drg="A", total=99999, hospital_tcm=True), "review", 555_000, []),  # override
    ("adj", dict(drg="A", total=8000, hospital_tcm=True, age=85),
     "normal", 924_000, ["tcm", "elderly"]),  # 80 × 1.1 = 88, × 1.05 = 92.4
    ("x", dict(drg="0000", total=5000), "ungrouped", 0, []),
]

READMIT = [
    # person p: stay 1 ends 1/5, stay 2 starts 1/20 (15 days: the earlier stay is halved);
    # stay 2 ends 1/22, stay 3 starts 2/7 (16 days: not a readmission).
    ("s1", dict(person_id="p", drg="A", total=8000, admit_date=D(2024, 1, 1),
                discharge_date=D(2024, 1, 5)), "readmit", 400_000, []),  # 80 × 50%
    ("s2", dict(person_id="p", drg="A", total=8000, admit_date=D(2024, 1, 20),
                discharge_date=D(2024, 1, 22)), "normal", 800_000, []),
    ("s3", dict(person_id="p", drg="A", total=28000, admit_date=D(2024, 2, 7),
                discharge_date=D(2024, 2, 9)), "high", 1_200_000, []),
    # same person, other group within the window: not a readmission
    ("s4", dict(person_id="p", drg="M", total=15000, admit_date=D(2024, 1, 6),
                discharge_date=D(2024, 1, 8)), "normal", 1_500_000, []),
    # a high outlier readmitted within the window: its own points halved, 120 → 60
    ("t1", dict(person_id="t", drg="A", total=28000, admit_date=D(2024, 3, 1),
                discharge_date=D(2024, 3, 4)), "readmit", 600_000, []),
    ("t2", dict(person_id="t", drg="A", total=8000, admit_date=D(2024, 3, 4),
                discharge_date=D(2024, 3, 6)), "normal", 800_000, []),
]


def run(cases, evaluate):
    table = claims(*({"claim_id": cid, **fields} for cid, fields, *_ in cases))
    plan = PointsPlan((inpatient_pool(),))
    if evaluate == "reference":
        rows = reference.claim_points(plan, "inp", table.to_pylist())
    else:
        rows = claim_points(plan, "inp", table).to_pylist()
    return {r["claim_id"]: (r["case_class"], r["points"], r["adjustments"]) for r in rows}


@pytest.mark.parametrize("evaluate", ["vector", "reference"])
@pytest.mark.parametrize("cases", [CASES, READMIT], ids=["classes", "readmission"])
def test_golden_points(cases, evaluate):
    got = run(cases, evaluate)
    assert got == {cid: (cls, pts, adj) for cid, _, cls, pts, adj in cases}


def test_pool_filter_selects_claims():
    from yibao.core.points.plan import Test
    pool = inpatient_pool(applies=(Test("hospital_level", "in", (2, 3)),))
    table = claims({"claim_id": "a", "drg": "A", "hospital_level": 1, "total": 8000},
                   {"claim_id": "b", "drg": "A", "hospital_level": 3, "total": 8000})
    out = claim_points(PointsPlan((pool,)), pool, table)
    assert out["claim_id"].to_pylist() == ["b"]


def test_base_group_without_average_cost_is_an_error():
    pool = inpatient_pool(avg_cost=(("A", 8000),))
    with pytest.raises(ValueError, match="no average cost"):
        claim_points(PointsPlan((pool,)), pool, claims({"claim_id": "a", "drg": "M"}))
