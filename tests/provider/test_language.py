"""The provider syntax: a small pool checked by hand, and compile errors with their codes."""
from __future__ import annotations

import datetime as dt
import textwrap

import pyarrow as pa
import pyarrow.compute  # noqa: F401  (pa.compute)
import pytest

from yibao.core import provider
from yibao.core.engine import settle
from yibao.dsl.compiler import check_text, compile_text
from yibao.dsl.printer import format_policy
from yibao.dsl.parser import parse

from policy_texts import BASIC_HEADER as HEADER  # tests/ is on the path (tests/conftest.py)

POOL = """
grouper g from "g.csv"
pool drg "小池" {
  applies when setting = inpatient
  group by g
  budget 1_000 yuan
  base points from "points.csv"
  high outlier 2 otherwise
  low outlier 0.5
  readmission within 15 days halves the earlier stay
  point value (budget + patient_paid) / points
}
"""


def write(tmp_path, name, text):
    (tmp_path / name).write_text(textwrap.dedent(text), encoding="utf-8")


@pytest.fixture
def folder(tmp_path):
    write(tmp_path, "g.csv", "group,grp_in\nA,a\nB,b\n")
    write(tmp_path, "points.csv", "group,points,avg_cost\nA,100,1000\nB,50,500\n")
    return tmp_path


def claim(cid, person, hospital, grp, total, admit, discharge):
    return {"claim_id": cid, "person_id": person, "family_id": None, "tier": "tier1",
            "low_income": False, "hospital_tcm": False, "setting": "inpatient",
            "hospital_id": hospital, "hospital_level": 3,
            "admit_date": dt.date(2024, *admit), "discharge_date": dt.date(2024, *discharge),
            "los": 3, "total": total, "in_scope": total, "self_first": 0, "grp": grp}


def test_golden_small_pool(folder):
    """By hand. Base points A 100 (avg 1,000 yuan), B 50 (avg 500 yuan); k = 1.
    c1 A 1,000 yuan at H1: r = 1 -> normal, 100 points; but p1 is readmitted to A 10 days
      after c1's discharge (c2), so c1 earns 100 × 50% = 50.
    c2 A 2,500 yuan at H1: r = 2.5 ≥ 2 -> high: 100 + 100 × (2.5 − 2) = 150.
    c3 B 200 yuan at H2: r = 0.4 ≤ 0.5 -> low: 50 × 0.4 = 20.
    c4 B 500 yuan at H2: normal 50.
    Σ points = 270. Patients pay 20% of each total (ratio 80%): 200 + 500 + 40 + 100 = 840
    yuan. PV = (1,000 + 840) / 270 yuan = 18,400/2,700 fen... exactly 184,000/270 fen.
    V[H1] = 200 × 184,000/270 = 136,296.296… fen, V[H2] = 70 × 184,000/270 = 47,703.703…:
    floors 136,296 + 47,703 = 183,999; the missing fen goes to the larger remainder (H2, .703).
    """
    plan = compile_text(HEADER + POOL, "t.yb", folder)
    rows = [claim("c1", "p1", "H1", "a", 100_000, (3, 1), (3, 5)),
            claim("c2", "p1", "H1", "a", 250_000, (3, 15), (3, 20)),
            claim("c3", "p2", "H2", "b", 20_000, (4, 1), (4, 3)),
            claim("c4", "p3", "H2", "b", 50_000, (5, 1), (5, 3))]
    claims = pa.Table.from_pylist(rows)
    res = settle(plan, claims).results
    got = {r["claim_id"]: (r["group"], r["case_class"], r["points"]) for r in res.to_pylist()}
    assert got == {"c1": ("A", "readmit", 500_000), "c2": ("A", "high", 1_500_000),
                   "c3": ("B", "low", 200_000), "c4": ("B", "normal", 500_000)}
    hospitals, pools = provider.settle_provider_year(plan, claims, res)
    pool = pools.to_pylist()[0]
    assert pool["points"] == 2_700_000 and pool["psn_part_amt"] == 84_000
    assert pool["point_value"] == "18400/27"  # 184,000 fen / 270 points
    h = {r["fixmedins_code"]: r for r in hospitals.to_pylist()}
    assert (h["H1"]["value"], h["H2"]["value"]) == (136_296, 47_704)
    assert h["H1"]["hifp_pay"] == 136_296 - 70_000 and h["H2"]["hifp_pay"] == 47_704 - 14_000
    assert pool["distributed"] == 184_000


def test_printer_round_trip(folder):
    text = HEADER + POOL.replace("high outlier 2 otherwise",
                                 "high outlier 3 when points <= 100, 2 otherwise")
    once = format_policy(parse(text, "t.yb"))
    assert format_policy(parse(once, "t.yb")) == once
    assert compile_text(once, "t.yb", folder).provider == compile_text(text, "t.yb", folder).provider


def codes(text, folder):
    plan, diags = check_text(HEADER + text, "t.yb", folder)
    return plan, [d.code for d in diags]


@pytest.mark.parametrize("text, code", [
    (POOL.replace("group by g", "group by h"), "E501"),
    (POOL.replace("applies when setting = inpatient", "applies when setting = inpatient or low_income"), "E502"),
    (POOL.replace("applies when setting = inpatient", "applies when settin = inpatient"), "E201"),
    (POOL.replace("applies when setting = inpatient", "applies when setting = clinic"), "E206"),
    (POOL.replace('  base points from "points.csv"\n', ""), "E503"),
    (POOL.replace("points.csv", "missing.csv"), "E305"),
    (POOL.replace("points.csv", "../points.csv"), "E304"),
    (POOL.replace("budget 1_000 yuan", "budget 1_000 yuan\n  budget 2_000 yuan"), "E111"),
    (POOL.replace("high outlier 2 otherwise", "high outlier 2 otherwise, 3 when points <= 100"), "E509"),
    (POOL + "pool drg { group by g }\n", "E202"),
])
def test_compile_errors(folder, text, code):
    plan, found = codes(text, folder)
    assert plan is None and code in found


def test_bad_points_csv(folder):
    write(folder, "points.csv", "group,pts,avg_cost\nA,100,1000\n")
    assert "E507" in codes(POOL, folder)[1]
    write(folder, "points.csv", "group,points,avg_cost\nA,1.00001,1000\n")
    assert "E507" in codes(POOL, folder)[1]


def test_decision_table_rows_analysed(folder):
    write(folder, "g.csv", "group,grp_in\nA,a|b\nB,b\n")  # B hidden by A
    plan, found = codes(POOL, folder)
    assert plan is None and "E505" in found
    write(folder, "g.csv", "group,grp_in,bad_col\nA,a,1\n")
    assert "E504" in codes(POOL, folder)[1]
    write(folder, "g.csv", "group,grp_in\nA,a|b\nB,b|c\n")  # share b, differ on a and c
    plan, found = codes(POOL, folder)
    assert plan is not None and "W506" in found


def test_drg_grouper_syntax(folder):
    text = """
attribute age: int
attribute sex: int
grouper drg "CHS-DRG" {
  tables chs_drg_11
  mdc order A, P, Y, Z
  split suffix "A" when age < 17 or hospital_level = 1 and low_income
}
"""
    plan = compile_text(HEADER + text, "t.yb", folder)
    g = plan.groupers[0]
    assert g.mdc_order == ("MDCA", "MDCP", "MDCY", "MDCZ") and g.columns == ("sex", "age")
    assert [[(t.column, t.op, t.value) for t in c] for c in g.splits[0].when] == [
        [("age", "<", 17)], [("hospital_level", "==", 1), ("low_income", "==", True)]]
    bad = text.replace("A, P, Y, Z", "A, Q9")
    assert "E508" in codes(bad, folder)[1]
    assert "E510" in codes(text.replace('suffix "A"', 'suffix "A-B"'), folder)[1]


BUDGETS_POOL = POOL.replace("budget 1_000 yuan", 'budget from "spend.csv" mean with 10% growth\n'
                            '  sharing keep 20% surplus, bear 20% overrun\n'
                            '  prepayments from "prepay.csv" floor 90%')


def test_golden_per_hospital_budgets_and_prepayments(folder):
    """By hand, the claims of test_golden_small_pool (patients pay 20%).
    Budgets: H1 mean(1,000, 1,200) × 1.1 = 1,210 yuan; H2 mean(500, 700) × 1.1 = 660 yuan.
    H1 fund cost A = 3,500 − 700 = 2,800 yuan: overrun 1,590, bears 20% = 318 -> G = 2,482,
      V = 2,482 + 700 = 3,182, D = 2,482 yuan.
    H2 A = 700 − 140 = 560 yuan: surplus 100, keeps 20 -> G = 580, V = 720, D = 580 yuan.
    Prepayments (floor 90% of the month's fund cost): H1 March 2,000 < 90% × 2,800 (both
    stays end in March) -> finding; H2 April 150 ≥ 90% × 160 (c3); H2 May nothing against
    400 (c4) -> finding. Settlement: H1 2,482 − 2,000 = 482; H2 580 − 150 = 430 yuan."""
    write(folder, "spend.csv", "hospital_id,y2022,y2023\nH1,1000,1200\nH2,500,700\n")
    write(folder, "prepay.csv", "hospital_id,month,amount\nH1,2024-03,2000\nH2,2024-04,150\n")
    plan = compile_text(HEADER + BUDGETS_POOL, "t.yb", folder)
    pool = plan.provider.pools[0]
    assert pool.hospital_budgets == (("H1", 121_000), ("H2", 66_000)) and pool.budget == 187_000
    assert pool.prepay_floor == 900_000
    rows = [claim("c1", "p1", "H1", "a", 100_000, (3, 1), (3, 5)),
            claim("c2", "p1", "H1", "a", 250_000, (3, 15), (3, 20)),
            claim("c3", "p2", "H2", "b", 20_000, (4, 1), (4, 3)),
            claim("c4", "p3", "H2", "b", 50_000, (5, 1), (5, 3))]
    claims = pa.Table.from_pylist(rows)
    res = settle(plan, claims).results
    hospitals, pools = provider.settle_provider_year(plan, claims, res)
    ref_h, ref_p = provider.settle_provider_year_reference(plan, claims, res)
    assert hospitals.to_pylist() == ref_h and pools.to_pylist() == ref_p
    h = {r["fixmedins_code"]: r for r in hospitals.to_pylist()}
    assert (h["H1"]["shared_amt"], h["H2"]["shared_amt"]) == (-31_800, 2_000)
    assert (h["H1"]["value"], h["H2"]["value"]) == (318_200, 72_000)
    assert (h["H1"]["hifp_pay"], h["H2"]["hifp_pay"]) == (248_200, 58_000)
    assert (h["H1"]["prepay_below"], h["H2"]["prepay_below"]) == (["2024-03"], ["2024-05"])
    assert (h["H1"]["setl_amt"], h["H2"]["setl_amt"]) == (48_200, 43_000)
    assert pools.to_pylist()[0]["fund_amt"] == 306_200


def test_prepayments_settle_the_same_from_partitions(folder):
    """A partitioned run sums each partition's monthly dues: one claim per piece gives the
    one-piece answer (merge_partials once summed only the yearly fields)."""
    write(folder, "spend.csv", "hospital_id,y2022,y2023\nH1,1000,1200\nH2,500,700\n")
    write(folder, "prepay.csv", "hospital_id,month,amount\nH1,2024-03,2000\nH2,2024-04,150\n")
    plan = compile_text(HEADER + BUDGETS_POOL, "t.yb", folder)
    claims = pa.Table.from_pylist([
        claim("c1", "p1", "H1", "a", 100_000, (3, 1), (3, 5)),
        claim("c2", "p1", "H1", "a", 250_000, (3, 15), (3, 20)),
        claim("c3", "p2", "H2", "b", 20_000, (4, 1), (4, 3)),
        claim("c4", "p3", "H2", "b", 50_000, (5, 1), (5, 3))])
    res = settle(plan, claims).results
    whole = provider.ProviderYear(plan)
    whole.add(claims, res)
    pieces = provider.ProviderYear(plan)
    for cid in ("c1", "c2", "c3", "c4"):
        pieces.add(claims.filter(pa.compute.equal(claims.column("claim_id"), cid)),
                   res.filter(pa.compute.equal(res.column("claim_id"), cid)))
    (h1, p1), (h2, p2) = whole.settle(), pieces.settle()
    assert h1.equals(h2) and p1.equals(p2)


def test_prepayments_default_floor_and_round_trip(folder):
    write(folder, "spend.csv", "hospital_id,y2022,y2023\nH1,1000,1200\n")
    write(folder, "prepay.csv", "hospital_id,month,amount\nH1,2024-03,2000.5\n")
    text = HEADER + BUDGETS_POOL.replace(" floor 90%", "")
    pool = compile_text(text, "t.yb", folder).provider.pools[0]
    assert pool.prepay_floor == 850_000 and pool.prepayments == (("H1", "2024-03", 200_050),)
    once = format_policy(parse(HEADER + BUDGETS_POOL, "t.yb"))
    assert format_policy(parse(once, "t.yb")) == once and "floor 90%" in once


@pytest.mark.parametrize("prepay, spend, extra, code", [
    ("hospital_id,month,amount\nH1,2024-13,1\n", None, "", "E507"),
    ("hospital_id,month,amount\nH1,24-03,1\n", None, "", "E507"),
    ("hospital_id,mon,amount\nH1,2024-03,1\n", None, "", "E507"),
    (None, "hospital_id,y1,y2\nH1,1,2\nH1,3,4\n", "", "E507"),
    (None, None, "  point value baseline 50% at 1 yuan\n", "E511"),
    (None, None, "  prepayments from \"prepay.csv\"\n", "E111"),
])
def test_budget_and_prepayment_errors(folder, prepay, spend, extra, code):
    write(folder, "spend.csv", spend or "hospital_id,y2022,y2023\nH1,1000,1200\n")
    write(folder, "prepay.csv", prepay or "hospital_id,month,amount\nH1,2024-03,1\n")
    text = BUDGETS_POOL.replace("  point value (budget + patient_paid) / points\n", extra or
                                "  point value (budget + patient_paid) / points\n") \
        if "point value" in extra else BUDGETS_POOL.replace("}\n", extra + "}\n", 1) \
        if extra else BUDGETS_POOL
    plan, found = codes(text, folder)
    assert plan is None and code in found


# -- special review (特病单议) -----------------------------------------------------------------

REVIEW_POOL = POOL.replace("  point value", '  special review from "review.csv"\n'
                           '  adjust big 1.5 when hospital_level = 3\n  point value')


def test_special_review_is_final(folder):
    """c1 would be readmitted (c2 10 days later) and every claim at level 3 earns × 1.5;
    under review c1 earns exactly the CSV's 77.5 points. c3 (B, low) is not under review:
    50 × 0.4 = 20 × 1.5 = 30. The review claim is valued: it is in P like any other."""
    write(folder, "review.csv", "claim_id,points,reason\nc1,77.5,罕见病\n")
    plan = compile_text(HEADER + REVIEW_POOL, "t.yb", folder)
    assert plan.provider.pools[0].review == (("c1", 775_000),)
    claims = pa.Table.from_pylist([claim("c1", "p1", "H1", "a", 100_000, (3, 1), (3, 5)),
                                   claim("c2", "p1", "H1", "a", 250_000, (3, 15), (3, 20)),
                                   claim("c3", "p2", "H2", "b", 20_000, (4, 1), (4, 3))])
    res = settle(plan, claims).results
    got = {r["claim_id"]: (r["case_class"], r["points"]) for r in res.to_pylist()}
    assert got["c1"] == ("review", 775_000) and got["c3"] == ("low", 300_000)
    ref = provider.claim_columns(plan, claims, reference=True).to_pylist()
    assert (ref[0]["case_class"], ref[0]["points"]) == ("review", 775_000)
    _, pools = provider.settle_provider_year(plan, claims, res)
    assert pools.to_pylist()[0]["psn_part_amt"] == (100_000 + 250_000 + 20_000) // 5


def test_explain_shows_special_review(folder):
    from yibao.core.explain import explain_claim, format_explanation
    write(folder, "review.csv", "claim_id,points\nc1,77.5\n")
    plan = compile_text(HEADER + REVIEW_POOL, "t.yb", folder)
    claims = pa.Table.from_pylist([claim("c1", "p1", "H1", "a", 100_000, (3, 1), (3, 5)),
                                   claim("c2", "p1", "H1", "a", 250_000, (3, 15), (3, 20))])
    text = format_explanation(explain_claim(plan, claims, "c1"))
    assert "special review (特病单议): 77.5000 points, final" in text
    assert "readmission:" not in text and "case class review" in text
    claims = pa.Table.from_pylist([claim("c9", "p9", "H1", "zz", 1_000, (3, 1), (3, 5))])
    text = format_explanation(explain_claim(plan, claims, "c9"))
    assert "awaiting special review (not charged to the hospital)" in text


def test_special_review_round_trip(folder):
    write(folder, "review.csv", "claim_id,points\nc1,77.5\n")
    once = format_policy(parse(HEADER + REVIEW_POOL, "t.yb"))
    assert 'special review from "review.csv"' in once
    assert format_policy(parse(once, "t.yb")) == once
    assert compile_text(once, "t.yb", folder).provider == compile_text(
        HEADER + REVIEW_POOL, "t.yb", folder).provider


@pytest.mark.parametrize("csv_text, where", [
    ("claim_id,points\nc1,77.5\nc2,1\nc1,3\n", "review.csv line 4: claim 'c1' is listed twice"),
    ("claim_id,points\nc1,7.123456\n", "review.csv line 2: points '7.123456'"),
    ("claim_id,points\n,7\n", "review.csv line 2: no claim_id"),
    ("claim_id,score\nc1,7\n", "missing points"),
    ("claim_id,points\nc1,-3\n", "review.csv line 2: points '-3'"),
])
def test_special_review_rows_named_by_line(folder, csv_text, where):
    write(folder, "review.csv", csv_text)
    plan, diags = check_text(HEADER + REVIEW_POOL, "t.yb", folder)
    assert plan is None
    assert any(d.code == "E507" and where in d.message for d in diags), [d.message for d in diags]


def test_special_review_file_stays_in_the_policy_folder(folder):
    text = REVIEW_POOL.replace('"review.csv"', '"../review.csv"')
    assert "E304" in codes(text, folder)[1]
    assert "E305" in codes(REVIEW_POOL, folder)[1]  # no review.csv written
    write(folder, "review.csv", "claim_id,points\nc1,1\n")
    text = REVIEW_POOL.replace("  point value", '  special review from "review.csv"\n  point value')
    assert "E111" in codes(text, folder)[1]


def test_w512_sharing_with_patient_paid(folder):
    shared = POOL.replace("  point value", "  sharing keep 50% surplus, bear 50% overrun\n"
                          "  point value")
    plan, found = codes(shared, folder)
    assert plan is not None and found == ["W512"]
    plan, found = codes(shared.replace("(budget + patient_paid) / points", "budget / points"),
                        folder)
    assert plan is not None and found == []
