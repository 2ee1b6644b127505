"""Issue 17 items 4 and 5 in the language: `group by` several groupers on one point scale with
base points from one table per grouper, and `fixed point value from …` (固定费率), compiled,
printed, settled end to end and refused with their codes."""
from __future__ import annotations

import datetime as dt
import textwrap

import pyarrow as pa
import pytest

from yibao.core import provider
from yibao.core.engine import settle
from yibao.core.plan import Type
from yibao.core.points.plan import PV_SCALE, FixedRate, GroupSource, Test
from yibao.dsl.compiler import check_text, compile_text
from yibao.dsl.parser import parse
from yibao.dsl.printer import format_policy

from policy_texts import BASIC_HEADER as HEADER  # tests/ is on the path (tests/conftest.py)


def claim(cid, person, hospital, grp, total, admit, discharge):
    return {"claim_id": cid, "person_id": person, "family_id": None, "tier": "tier1",
            "low_income": False, "hospital_tcm": False, "setting": "inpatient",
            "hospital_id": hospital, "hospital_level": 3,
            "admit_date": dt.date(2024, *admit), "discharge_date": dt.date(2024, *discharge),
            "los": 3, "total": total, "in_scope": total, "self_first": 0, "grp": grp}

POOL = """
grouper g from "g.csv"
grouper d from "d.csv"
pool inpatient "一个点值" {
  applies when setting = inpatient
  group by g when hospital_level = 3, d otherwise
  budget 1_000 yuan
  base points from "points.csv", "dip_points.csv"
  point value budget / points
  fixed point value from "fixed.csv"
}
"""


def write(folder, name, text):
    (folder / name).write_text(textwrap.dedent(text), encoding="utf-8")


@pytest.fixture
def folder(tmp_path):
    write(tmp_path, "g.csv", "group,grp_in\nA,a\n")
    write(tmp_path, "d.csv", "group,grp_in\nD-A,a\n")
    write(tmp_path, "points.csv", "group,points,avg_cost\nA,100,1000\n")
    write(tmp_path, "dip_points.csv", "group,points,avg_cost\nD-A,40,400\n")
    write(tmp_path, "fixed.csv", "hospital_id,point_value,compensation,label\n"
                                 "H9,8.5,60%,中医院\n")
    return tmp_path


def codes(text, folder):
    plan, diags = check_text(text, "t.yb", base_dir=folder)
    return plan, {d.code for d in diags}


def test_compiles_to_sources_and_fixed_rates(folder):
    plan = compile_text(HEADER + POOL, "t.yb", folder)
    pool = plan.provider.pools[0]
    assert pool.group_column == "g+d"
    level = Type("int", (1, 2, 3))  # the test carries its column's declared type
    assert pool.group_sources == (GroupSource("g", (Test("hospital_level", "==", 3, level),)),
                                  GroupSource("d", ()))
    assert dict(pool.base_points) == {"A": 1_000_000, "D-A": 400_000}
    assert pool.fixed_rates == (FixedRate("H9", 850 * PV_SCALE, 600_000),)
    assert "groups from: g when hospital_level == 3; d otherwise" in plan.describe()


def test_prints_back_to_itself(folder):
    text = format_policy(parse(HEADER + POOL, "t.yb"))
    assert "group by g when hospital_level = 3, d otherwise" in text
    assert 'base points from "points.csv", "dip_points.csv"' in text
    assert 'fixed point value from "fixed.csv"' in text
    assert format_policy(parse(text, "t.yb")) == text


def test_settles_end_to_end_on_both_paths(folder):
    """By hand. c1 (level 3) reads g: A, 1,000 yuan = avg -> 100 points at H1; c2 (level 2)
    reads d: D-A, 400 yuan -> 40 points at H9, the fixed hospital: 40 × 8.5 = 340 yuan,
    its fund cost 80% × 400 = 320 < 340: no compensation. H1 floats on 1,000 − 340 = 660."""
    plan = compile_text(HEADER + POOL, "t.yb", folder)
    rows = [claim("c1", "p1", "H1", "a", 100_000, (3, 1), (3, 5)),
            {**claim("c2", "p2", "H9", "a", 40_000, (4, 1), (4, 3)), "hospital_level": 2}]
    claims = pa.Table.from_pylist(rows)
    results = settle(plan, claims).results
    cols = provider.claim_columns(plan, claims)
    assert cols.column("group").to_pylist() == ["A", "D-A"]
    assert cols.column("points").to_pylist() == [1_000_000, 400_000]
    assert provider.claim_columns(plan, claims, reference=True).equals(cols)
    hosp, pools = provider.settle_provider_year(plan, claims, results)
    by_h = {r["fixmedins_code"]: r for r in hosp.to_pylist()}
    assert (by_h["H9"]["value"], by_h["H9"]["compensation_amt"]) == (34_000, 0)
    assert by_h["H1"]["value"] == 66_000
    ref_h, ref_p = provider.settle_provider_year_reference(plan, claims, results)
    assert ref_h == hosp.to_pylist() and ref_p == pools.to_pylist()


@pytest.mark.parametrize("fixed, points2, stmt, code", [
    ("hospital_id,point_value\nH9,1\nH9,2\n", None, None, "E507"),  # listed twice
    ("hospital_id,point_value\nH9,abc\n", None, None, "E507"),
    ("hospital_id,point_value,compensation\nH9,1,120%\n", None, None, "E507"),
    ("hospital,point_value\nH9,1\n", None, None, "E507"),
    (None, "group,points,avg_cost\nA,40,400\n", None, "E507"),  # A in both tables
    (None, None, "  group by g when hospital_level = 3, g otherwise\n", "E514"),
    (None, None, "  group by g otherwise, d when hospital_level = 3\n", "E514"),
    (None, None, "  group by g when hospital_level = 3, x otherwise\n", "E501"),
    (None, None, "  group by g when hospital_level = 3 or age > 1, d otherwise\n", "E502"),
    (None, None, "  fixed point value from \"fixed.csv\"\n", "E111"),
])
def test_errors(folder, fixed, points2, stmt, code):
    if fixed:
        write(folder, "fixed.csv", fixed)
    if points2:
        write(folder, "dip_points.csv", points2)
    text = HEADER + "attribute age: int\n" + POOL
    if stmt and stmt.startswith("  group by"):
        text = text.replace("  group by g when hospital_level = 3, d otherwise\n", stmt)
    elif stmt:
        text = text.replace("  point value budget", stmt + "  point value budget")
    plan, found = codes(text, folder)
    assert plan is None and code in found, found


def test_explain_names_the_source_grouper_and_the_fixed_point_value(folder):
    from yibao.core.explain import explain_claim, format_explanation
    plan = compile_text(HEADER + POOL, "t.yb", folder)
    claims = pa.Table.from_pylist([
        claim("c1", "p1", "H1", "a", 100_000, (3, 1), (3, 5)),
        {**claim("c2", "p2", "H9", "a", 40_000, (4, 1), (4, 3)), "hospital_level": 2}])
    text = format_explanation(explain_claim(plan, claims, "c2"))
    assert "group g+d = D-A (grouping status ok)" in text
    assert "decision table d row 1 (d.csv:2): grp in {a} -> D-A" in text
    assert "hospital H9 is on a fixed point value of 8.5 yuan (shortfall made up 60%)" in text
    assert "fixed point value" not in format_explanation(explain_claim(plan, claims, "c1"))


@pytest.mark.parametrize("budget, fen, code", [
    ("budget 600 yuan per head for 5_000 insured", 300_000_000, None),
    ("budget 0.01 yuan per head for 3 insured", 3, None),
    ("budget 600 yuan per head for 5.5 insured", None, "E210"),
    ("budget 60% per head for 5 insured", None, "E214"),
    ("budget 90_000_000_000_000 yuan per head for 9_000_000 insured", None, "E215"),
])
def test_budget_per_insured_person(folder, budget, fen, code):
    text = HEADER + POOL.replace("  budget 1_000 yuan\n", f"  {budget}\n")
    plan, diags = check_text(text, "t.yb", base_dir=folder)
    if code is None:
        assert plan.provider.pools[0].budget == fen
        printed = format_policy(parse(text, "t.yb"))
        assert budget in printed
    else:
        assert plan is None and code in {d.code for d in diags}
