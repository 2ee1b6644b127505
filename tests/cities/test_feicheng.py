"""Feicheng long-term care (city_configs/feicheng, issue 17 item 2) on its generated claims
(core/generate_ltc.py): the kernel equals the oracle, every claim is settled, the monthly
allowance is paid at most once a month, nothing is paid before the assessment or below
重度失能, and `yibao demo --city feicheng` runs on LTC claims."""
from collections import defaultdict
from pathlib import Path

import pyarrow as pa
import pytest

from yibao.core.claims import LTC_SCHEMA
from yibao.core.engine import settle
from yibao.core.generate_ltc import ltc_claims
from yibao.core.reference import settle as settle_reference
from yibao.dsl.cli import main
from yibao.dsl.compiler import compile_policy

FEICHENG = Path(__file__).resolve().parents[2] / "city_configs" / "feicheng"


@pytest.fixture(scope="module")
def plan():
    return compile_policy(FEICHENG / "policy.yb")


@pytest.fixture(scope="module")
def claims():
    return ltc_claims(3_000, seed=11, start_year=2022)


@pytest.fixture(scope="module")
def settled(plan, claims):
    return settle(plan, claims)


def test_the_generator_is_deterministic_and_exact_in_size():
    a, b = ltc_claims(777, seed=3, start_year=2022), ltc_claims(777, seed=3, start_year=2022)
    assert a.equals(b) and a.num_rows == 777 and a.schema == LTC_SCHEMA
    assert ltc_claims(0).num_rows == 0
    services = set(a.column("care_service").to_pylist())
    assert services == {"family", "visit", "institution"}


def test_kernel_equals_reference_on_ltc_claims(plan, claims, settled):
    ref = settle_reference(plan, claims)
    assert settled.results.equals(ref.results)
    assert settled.rejects.to_pylist() == ref.rejects.to_pylist()


def test_every_claim_is_settled(claims, settled):
    assert settled.results.num_rows == claims.num_rows and settled.rejects.num_rows == 0


def _rows(claims, settled) -> list:
    by_id = {r["claim_id"]: r for r in claims.to_pylist()}
    return [{**by_id[r["claim_id"]], **r} for r in settled.results.to_pylist()]


def test_the_family_allowance_is_at_most_450_a_person_a_month(claims, settled):
    paid = defaultdict(int)
    for r in _rows(claims, settled):
        month = (r["person_id"], r["discharge_date"].year, r["discharge_date"].month)
        paid[month] += r["family_care"]
    assert max(paid.values()) == 45_000  # fen
    twice = [r for r in claims.to_pylist() if r["care_service"] == "family"]
    per_month = defaultdict(int)
    for r in twice:
        per_month[(r["person_id"], r["discharge_date"])] += 1
    assert max(per_month.values()) == 2  # the generator does write duplicate months


def test_nothing_before_the_assessment_or_below_severe(claims, settled):
    rows = _rows(claims, settled)
    paid = lambda r: r["family_care"] + r["home_visits"] + r["institution_care"]
    early = [r for r in rows if r["admit_date"] < r["assessed_date"]]
    mild = [r for r in rows if r["disability_grade"] == 0]
    assert early and mild and all(paid(r) == 0 for r in early + mild)
    covered = [r for r in rows if r["admit_date"] >= r["assessed_date"]
               and r["disability_grade"] > 0]
    assert sum(paid(r) for r in covered) > 0


def test_institutional_care_is_paid_per_day_by_grade_and_scheme(plan, claims, settled):
    rates = dict(plan.table("institution_day_rate").rows)
    schemes = plan.column("scheme").type.domain
    for r in _rows(claims, settled):
        if r["care_service"] != "institution" or r["institution_care"] == 0:
            continue
        rate = rates[(schemes.index(r["scheme"]), r["disability_grade"])]
        assert r["institution_care"] == min(r["in_scope"], rate * r["care_days"])


def test_demo_runs_on_ltc_claims(capsys):
    assert main(["demo", "--city", "feicheng", "--claims", "400"]) == 0
    out = capsys.readouterr().out
    assert "肥城市长期护理保险" in out and "family_care" in out and "0 rejected" in out
