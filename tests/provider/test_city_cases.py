"""The provider-payment cases of every points city's tests.yaml (hand-checked, with the
arithmetic beside each case), on the kernel path through ``yibao test``'s runner and on the
reference path (per-claim points oracle and its settlement), which must agree."""
from __future__ import annotations

from pathlib import Path

import pytest

from yibao.core import provider
from yibao.core.engine import settle
from yibao.core.policytest import (
    CaseFileError, Case, claims_table, load_cases, run_case)
from yibao.core.reference import settle as settle_reference
from yibao.dsl.compiler import compile_policy
from yibao.plugins.manager import build_registry, make_plugin_manager

# yibao's own plugins: rizhao applies the tcm plugin's tcm_tilt (`adjust by tcm_tilt`)
SHIPPED = build_registry(make_plugin_manager(allowlist="family,tcm"))

CONFIGS = Path(__file__).resolve().parents[2] / "city_configs"
POINT_CITIES = ("jinhua", "rizhao", "shanghai")


def provider_cases(city):
    return [c for c in load_cases(CONFIGS / city) if c.hospitals or any(
        col in ("group", "case_class", "points") for _, col, _ in c.expect)]


@pytest.mark.parametrize("city", POINT_CITIES)
def test_every_points_city_ships_provider_cases(city):
    cases = provider_cases(city)
    assert any(c.hospitals for c in cases), f"{city}: no case states a hospital's payment"
    stated = {col for c in cases for _, col, _ in c.expect}
    assert {"group", "case_class", "points"} <= stated
    stated = {col for c in cases for _, _, col, _ in c.hospitals}
    assert {"value", "hifp_pay"} <= stated
    assert any(c.pools for c in cases)


@pytest.mark.parametrize("city", POINT_CITIES)
def test_provider_cases_pass_on_the_kernel(city):
    plan = compile_policy(str(CONFIGS / city), SHIPPED)
    for case in provider_cases(city):
        res = run_case(plan, case)
        assert res.passed, (case.name, res.error, res.mismatches)


@pytest.mark.parametrize("city", POINT_CITIES)
def test_provider_cases_agree_on_the_reference_path(city):
    plan = compile_policy(str(CONFIGS / city), SHIPPED)
    for case in provider_cases(city):
        table = claims_table(list(case.claims), plan)
        kernel = settle(plan, table).results
        oracle = settle_reference(plan, table).results
        columns = ("claim_id", "pool", "group", "case_class", "points", "self_pay")
        assert oracle.select(columns).to_pylist() == kernel.select(columns).to_pylist()
        ref = provider.claim_columns(plan, table, reference=True)
        assert ref.to_pylist() == provider.claim_columns(plan, table).to_pylist()
        hospitals, pools = provider.settle_provider_year(plan, table, kernel)
        ref_h, ref_p = provider.settle_provider_year_reference(plan, table, kernel)
        assert (hospitals.to_pylist(), pools.to_pylist()) == (ref_h, ref_p)


def test_a_wrong_hospital_figure_is_named(tmp_path):
    plan = compile_policy(str(CONFIGS / "rizhao"), SHIPPED)
    case = next(c for c in provider_cases("rizhao") if c.hospitals)
    wrong = Case(case.name, case.claims, case.expect,
                 tuple((p, h, col, v + 1 if col == "hifp_pay" else v)
                       for p, h, col, v in case.hospitals))
    res = run_case(plan, wrong)
    assert {(m.claim_id, m.column) for m in res.mismatches} == {
        ("inpatient_drg:H01", "hifp_pay"), ("inpatient_drg:H02", "hifp_pay")}
    m = res.mismatches[0]
    assert (m.shown(m.expected), m.shown(m.actual)) == ("185,356.01", "185,356.00")
    missing = Case("x", case.claims, (), (("inpatient_drg", "H99", "value", 1),),
                   (("nope", "fund_amt", 1), ("inpatient_drg", "fund_cost", 6461)))
    notes = [(m.claim_id, m.note) for m in run_case(plan, missing).mismatches]
    assert notes == [("inpatient_drg:H99", "no such hospital in the pool"),
                     ("nope", "no such pool"), ("inpatient_drg", "")]


def test_points_and_text_expectations_are_read_exactly(tmp_path):
    path = tmp_path / "tests.yaml"
    path.write_text("- name: a\n  claims: []\n  expect:\n    C1: {points: 12.34567}\n")
    with pytest.raises(CaseFileError, match="more than 4 decimals"):
        load_cases(path)
    path.write_text("- name: a\n  claims: []\n  expect:\n    C1: {group: 0101}\n")
    with pytest.raises(CaseFileError, match="quote it"):  # YAML would read 0101 as 65
        load_cases(path)
    path.write_text("- name: a\n  claims: []\n  expect:\n    C1: {points: 12.5, group: '0101',"
                    " case_class: high}\n  hospitals:\n    p: {H1: {claims: 2, value: 1.5}}\n")
    (case,) = load_cases(path)
    assert case.expect == (("C1", "points", 125_000), ("C1", "group", "0101"),
                           ("C1", "case_class", "high"))
    assert case.hospitals == (("p", "H1", "claims", 2), ("p", "H1", "value", 150))
