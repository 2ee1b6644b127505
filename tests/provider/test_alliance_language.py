"""Issue 17 item 3 in the language: `alliance … { residents by …; budget … per head from …;
applies to …; sharing … }` compiled, printed, settled end to end on both paths and across
partitions, and refused with its codes."""
from __future__ import annotations

import datetime as dt
import textwrap

import pyarrow as pa
import pytest

from yibao.core import provider
from yibao.core.engine import settle
from yibao.core.points.plan import Alliance
from yibao.dsl.compiler import check_text, compile_text
from yibao.dsl.parser import parse
from yibao.dsl.printer import format_policy

POLICY = """policy "t" {
  region "test"
  effective 2024-01-01 to 2024-12-31
}
attribute grp: text
attribute alliance_id: text
layer basic "基本" {
  applies when setting in {inpatient, outpatient}
  base in_scope
  ratio 80%
}
grouper g from "g.csv"
pool inpatient {
  applies when setting = inpatient
  group by g
  budget 1_000 yuan
  base points from "points.csv"
  point value budget / points
}
pool outpatient {
  applies when setting = outpatient
  group by g
  budget 100 yuan
  base points from "points.csv"
  point value budget / points
}
alliance county "县域医共体" {
  residents by alliance_id
  budget 20 yuan per head from "alliances.csv"
  applies to inpatient, outpatient
  sharing keep 100% surplus, bear 60% overrun
}
"""


def write(folder, name, text):
    (folder / name).write_text(textwrap.dedent(text), encoding="utf-8")


@pytest.fixture
def folder(tmp_path):
    write(tmp_path, "g.csv", "group,grp_in\nA,a\n")
    write(tmp_path, "points.csv", "group,points,avg_cost\nA,100,1000\n")
    write(tmp_path, "alliances.csv", "alliance,persons,label\nY1,40,东港区医共体\nY2,10,莒县\n")
    return tmp_path


def claim(cid, person, hospital, setting, alliance, total):
    return {"claim_id": cid, "person_id": person, "family_id": None, "tier": "tier1",
            "low_income": False, "hospital_tcm": False, "setting": setting,
            "hospital_id": hospital, "hospital_level": 2, "admit_date": dt.date(2024, 3, 1),
            "discharge_date": dt.date(2024, 3, 3), "los": 2, "total": total,
            "in_scope": total, "self_first": 0, "grp": "a", "alliance_id": alliance}


def test_compiles_and_prints(folder):
    plan = compile_text(POLICY, "t.yb", folder)
    assert plan.provider.alliances == (Alliance(
        "county", "alliance_id", 2_000, (("Y1", 40), ("Y2", 10)), ("inpatient", "outpatient"),
        1_000_000, 600_000),)
    text = format_policy(parse(POLICY, "t.yb"))
    assert "  budget 20 yuan per head from \"alliances.csv\"\n" in text
    assert format_policy(parse(text, "t.yb")) == text


def test_settles_end_to_end(folder):
    """By hand. inpatient: c1 (Y1) and c2 (no alliance) 100 points each, PV = 1,000 yuan /
    200: c1 is worth 500 yuan. outpatient: c3 (Y1, treated at another alliance's H3) alone,
    100 points, worth the whole 100 yuan. Y1 used 600 yuan against 40 × 20 = 800: surplus
    200 kept. Y2 used nothing: its 200 yuan kept."""
    plan = compile_text(POLICY, "t.yb", folder)
    claims = pa.Table.from_pylist([
        claim("c1", "p1", "H1", "inpatient", "Y1", 100_000),
        claim("c2", "p2", "H1", "inpatient", None, 100_000),
        claim("c3", "p1", "H3", "outpatient", "Y1", 100_000)])
    results = settle(plan, claims).results
    hosp, pools = provider.settle_provider_year(plan, claims, results)
    rows = {(r["pool"], r["fixmedins_code"]): r for r in hosp.to_pylist()}
    assert (rows["county", "Y1"]["value"], rows["county", "Y1"]["shared_amt"]) == (60_000, 20_000)
    assert (rows["county", "Y2"]["value"], rows["county", "Y2"]["shared_amt"]) == (0, 20_000)
    ref_h, ref_p = provider.settle_provider_year_reference(plan, claims, results)
    assert ref_h == hosp.to_pylist() and ref_p == pools.to_pylist()
    # piece by piece, through JSON (as Spark executors hand them over): the same tables
    year = provider.ProviderYear(plan)
    for i in range(3):
        part = provider.provider_partials(plan, claims.slice(i, 1), results.slice(i, 1))
        year.merge(provider.partials_from_json(provider.partials_to_json(part)))
    assert [t.to_pylist() for t in year.settle()] == [hosp.to_pylist(), pools.to_pylist()]


@pytest.mark.parametrize("edit, code", [
    (("  applies to inpatient, outpatient\n", ""), "E516"),  # no pools
    (("applies to inpatient, outpatient", "applies to inpatient, inpatient"), "E516"),
    (("residents by alliance_id", "residents by nowhere"), "E201"),
    (("residents by alliance_id", "residents by admit_date"), "E502"),
    (("alliance county", "alliance inpatient"), "E202"),
    (("  sharing keep", "  sharing keep 1% surplus, bear 1% overrun\n  sharing keep"), "E111"),
    (("\"alliances.csv\"", "\"twice.csv\""), "E507"),
    (("20 yuan per head", "20% per head"), "E214"),
])
def test_errors(folder, edit, code):
    write(folder, "twice.csv", "alliance,persons\nY1,1\nY1,2\n")
    plan, diags = check_text(POLICY.replace(*edit), "t.yb", base_dir=folder)
    found = {d.code for d in diags}
    assert plan is None and code in found, found


def test_explain_names_the_alliance(folder):
    from yibao.core.explain import explain_claim, format_explanation
    plan = compile_text(POLICY, "t.yb", folder)
    claims = pa.Table.from_pylist([claim("c1", "p1", "H1", "inpatient", "Y1", 100_000),
                                   claim("c2", "p2", "H1", "inpatient", None, 100_000)])
    text = format_explanation(explain_claim(plan, claims, "c1"))
    assert "resident of alliance Y1 (county)" in text
    assert "resident of alliance" not in format_explanation(explain_claim(plan, claims, "c2"))
