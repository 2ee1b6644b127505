"""Claim batches and pools shared by the points tests."""
import datetime as dt

import pyarrow as pa

from yibao.core.points.plan import (
    POINT_SCALE as PT, Adjustment, BedDay, Pool, Readmission, Test, ZHEJIANG_DAY_TIERS,
    ZHEJIANG_OUTLIERS)

COLUMNS = {"claim_id": pa.string(), "person_id": pa.string(), "hospital_id": pa.string(),
           "hospital_level": pa.int8(), "hospital_tcm": pa.bool_(), "age": pa.int32(),
           "drg": pa.string(), "total": pa.int64(), "psn_part_amt": pa.int64(),
           "admit_date": pa.date32(), "discharge_date": pa.date32(), "los": pa.int32(),
           "incomplete": pa.bool_(), "signed_inst": pa.string()}

DEFAULTS = {"person_id": "p0", "hospital_id": "h1", "hospital_level": 2,
            "hospital_tcm": False, "age": 40, "total": 0, "psn_part_amt": 0,
            "admit_date": dt.date(2024, 1, 1), "discharge_date": dt.date(2024, 1, 3),
            "los": 2, "incomplete": False, "signed_inst": None}


def claims(*rows) -> pa.Table:
    """A claim table from partial dicts (defaults fill the rest)."""
    full = [{**DEFAULTS, **r} for r in rows]
    return pa.table({c: pa.array([r.get(c) for r in full], t) for c, t in COLUMNS.items()})


def inpatient_pool(**over) -> Pool:
    """A: B 80 (band ≤ 100, T 3); M: B 150 (T 2); H: B 300 (T 1.5); Q: B 12.3457;
    R: bed-day 2.5 points/day; level 3 gets k 1.2 on A, level 1 k 0.5 on Q."""
    kw = dict(
        name="inp", budget=1_000_000,
        base_points=(("A", 80 * PT), ("M", 150 * PT), ("H", 300 * PT), ("Q", 123_457)),
        avg_cost=(("A", 8000), ("M", 15000), ("H", 30000), ("Q", 1000)),
        coefficients=(("3", "A", 1_200_000), ("1", "Q", 500_000)),
        outliers=ZHEJIANG_OUTLIERS, incomplete_column="incomplete",
        bed_day=BedDay((("R", 25_000),), ZHEJIANG_DAY_TIERS),
        readmission=Readmission(15),
        review=(("rv", 555_000),),
        adjustments=(Adjustment("tcm", 1_100_000, (Test("hospital_tcm", "==", True),)),
                     Adjustment("elderly", 1_050_000, (Test("age", ">=", 80),))))
    kw.update(over)
    return Pool(**kw)


def settled(pool, table, evaluate="vector"):
    """({hospital_id: hospital row}, pool row) of one pool settled on ``table`` by the
    vectorised path or, with ``evaluate="reference"``, by the reference evaluator."""
    from yibao.core.points import reference
    from yibao.core.points.compute import all_claim_points, settle_providers
    from yibao.core.points.plan import PointsPlan
    plan = PointsPlan((pool,))
    if evaluate == "reference":
        rows = table.to_pylist()
        hosp, pools = reference.settle(plan, rows, reference.claim_points(plan, pool, rows))
    else:
        h, p = settle_providers(plan, table, all_claim_points(plan, table))
        hosp, pools = h.to_pylist(), p.to_pylist()
    return {r["fixmedins_code"]: r for r in hosp}, pools[0]


def vector(plan, table):
    """(claim rows, hospital rows, pool rows) of ``plan`` on ``table`` by the vectorised path;
    the Hypothesis tests compare it with ``oracle``."""
    from yibao.core.points.compute import all_claim_points, settle_providers
    scored = all_claim_points(plan, table)
    h, p = settle_providers(plan, table, scored)
    return scored.to_pylist(), h.to_pylist(), p.to_pylist()


def oracle(plan, table):
    """The same triple by the reference evaluator (its first pool's claims)."""
    from yibao.core.points import reference
    rows = table.to_pylist()
    scored = reference.claim_points(plan, plan.pools[0], rows)
    h, p = reference.settle(plan, rows, scored)
    return scored, h, p
