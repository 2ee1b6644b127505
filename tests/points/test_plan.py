"""The points plan nodes round-trip through JSON and print a stable description."""
import pytest

from yibao.core.points.plan import (
    BASELINE, Capitation, PointsPlan, PointValue, RiskSharing, Test)

from points_helpers import inpatient_pool

EXPECTED = """\
pool inp: budget 1000000 fen, group by drg
  applies: hospital_level in (2, 3)
  4 groups with base points, 2 coefficients by hospital_level
  outliers: high r ≥ [B ≤ 100.0000: 3, B ≤ 200.0000: 2, else 1.5]; low r ≤ 0.4
  incomplete stay: incomplete
  bed-day: 1 groups, tiers 1-30 ×1, 31-60 ×0.9, 61- ×0.8
  readmission within 15 days: earlier stay ×0.5
  special review: 1 claims
  adjust tcm ×1.1 when hospital_tcm == True
  adjust elderly ×1.05 when age >= 80
  PV = 0.75 × 3000 fen + 0.25 × F / Σ points; reserve 0.05
  sharing: keep 0.2 of surplus, bear 0.2 of overrun vs 5000 fen × 100 insured
  capitation 10000 fen/head, 1 institutions"""


def plan():
    return PointsPlan((inpatient_pool(
        applies=(Test("hospital_level", "in", (2, 3)),), reserve_share=50_000,
        point_value=PointValue(BASELINE, 3_000_000_000, 750_000),
        sharing=RiskSharing(200_000, 200_000, per_head=5_000, insured=100),
        capitation=Capitation(10_000, (("h1", 10),))),))


def test_json_round_trip():
    p = plan()
    assert PointsPlan.from_json(p.to_json()) == p


def test_describe():
    assert plan().describe() == EXPECTED


def test_wrong_version_and_bad_op_rejected():
    with pytest.raises(ValueError, match="version"):
        PointsPlan.from_json(plan().to_json().replace("yibao.points/1", "yibao.points/0"))
    with pytest.raises(ValueError, match="op"):
        Test("age", "~", 1)
