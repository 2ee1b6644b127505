"""A small city with a decision-table grouper (so every claim has a DRG-like group), and a
claim builder, for the supervision tests."""
from __future__ import annotations

import random

import datetime as dt
import textwrap

import pyarrow as pa

from yibao.core import reference, supervision
from yibao.core.engine import settle
from yibao.dsl.compiler import compile_text

from policy_texts import BASIC_HEADER  # tests/ is on the path (tests/conftest.py)

HEADER = BASIC_HEADER + """grouper g from "g.csv"
pool drg "病组" {
  applies when setting = inpatient
  group by g
  budget 1_000 yuan
  base points from "points.csv"
  point value budget / points
}
"""
# ADRG AB: AB11 with MCC, AB13 with CC, AB15 without; CD19 not split; EE15 a light group
GROUPS = ("AB11", "AB13", "AB15", "CD19", "EE15")


def city(tmp_path, flags: str):
    """The plan of HEADER plus ``flags`` (policy text), its CSVs in ``tmp_path``."""
    (tmp_path / "g.csv").write_text("group,grp_in\n" + "".join(
        f"{g},{g.lower()}\n" for g in GROUPS), encoding="utf-8")
    (tmp_path / "points.csv").write_text("group,points,avg_cost\n" + "".join(
        f"{g},100,1000\n" for g in GROUPS), encoding="utf-8")
    return compile_text(HEADER + textwrap.dedent(flags), "t.yb", tmp_path)


def claim(cid, person, hospital, group, total, admit, discharge, level=3, setting="inpatient"):
    """A claim; ``admit``/``discharge`` are days of 2024 (1 = Jan 1)."""
    day = dt.date(2023, 12, 31)
    return {"claim_id": cid, "person_id": person, "family_id": None, "tier": "tier1",
            "low_income": False, "hospital_tcm": False, "setting": setting,
            "hospital_id": hospital, "hospital_level": level,
            "admit_date": day + dt.timedelta(admit),
            "discharge_date": day + dt.timedelta(discharge),
            "los": discharge - admit, "total": total, "in_scope": total, "self_first": 0,
            "grp": group.lower() if group else None}


def both(plan, rows):
    """(kernel Supervised, oracle Supervised) of the claims ``rows``; asserts they agree."""
    claims = pa.Table.from_pylist(rows)
    batch = settle(plan, claims)
    fast = supervision.evaluate(plan, claims, batch.results)
    by_rows = supervision.evaluate(plan, claims, batch.results, rows=batch.rows)
    assert by_rows.flags.equals(fast.flags) and by_rows.indicators.equals(fast.indicators)
    slow = supervision.evaluate(plan, claims, reference.settle(plan, claims).results,
                                reference=True)
    assert fast.flags.equals(slow.flags), (fast.flags.to_pylist(), slow.flags.to_pylist())
    assert fast.indicators.equals(slow.indicators)
    assert fast.held.sort_by("claim_id").equals(slow.held.sort_by("claim_id"))
    return fast


def flagged(result, rule=None) -> list:
    """(rule, claim or hospital, value, threshold, related) of each flag row."""
    return [(r["rule"], r["claim_id"] or r["hospital_id"], r["value"], r["threshold"],
             r["related"]) for r in result.flags.to_pylist() if rule in (None, r["rule"])]


# a batch for the run tests (test_run, test_spark, test_properties): four rules, random stays
FLAGS = """
flag split_stay "分解住院" {
  readmission within 5 days at the same hospital
  effect review
}
flag elsewhere "再入院" {
  readmission within 10 days at another hospital
}
flag costly "费用异常" {
  cost above 150% of the group mean
}
flag upcoding "高套" {
  cc share above 120% of the city
}
"""


def _random_claims(seed: int, n: int = 120) -> list:
    rnd = random.Random(seed)
    rows = []
    for i in range(n):
        admit = rnd.randint(1, 300)
        rows.append(claim(f"c{i:03d}", f"p{rnd.randint(0, 25)}", rnd.choice(["H1", "H2", "H3"]),
                          rnd.choice(GROUPS), rnd.randint(100, 90_000), admit,
                          admit + rnd.randint(0, 9), level=rnd.randint(1, 3)))
    return rows
