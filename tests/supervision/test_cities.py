"""The cities' tests.yaml supervision expectations (`flags:` and `pending_review`) on both
evaluators: each case's claims settled and supervised by the kernel path and by the oracle."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from yibao.core import reference, supervision
from yibao.core.engine import settle
from yibao.core.policytest import claims_table, fen
from yibao.dsl.compiler import compile_policy

CONFIGS = Path(__file__).resolve().parents[2] / "city_configs"
CITIES = ("jinhua", "rizhao", "shanghai")


def cases():
    for city in CITIES:
        for case in yaml.safe_load((CONFIGS / city / "tests.yaml").read_text(encoding="utf-8")):
            pending = any("pending_review" in cols for cols in (case.get("expect") or {}).values())
            if "flags" in case or pending:
                yield pytest.param(city, case, id=f"{city}:{case['name'][:24]}")


@pytest.fixture(scope="module")
def plans():
    return {city: compile_policy(CONFIGS / city) for city in CITIES}


def test_every_city_has_a_supervision_case():
    assert {p.values[0] for p in cases()} == set(CITIES)


@pytest.mark.parametrize("city, case", list(cases()))
@pytest.mark.parametrize("oracle", [False, True], ids=["kernel", "reference"])
def test_city_supervision_cases(plans, city, case, oracle):
    plan = plans[city]
    claims = claims_table(case["claims"], plan)
    results = (reference.settle if oracle else settle)(plan, claims).results
    found = supervision.evaluate(plan, claims, results, reference=oracle)
    raised = {}
    for row in found.flags.to_pylist():
        raised.setdefault(row["claim_id"] or row["hospital_id"], []).append(row["rule"])
    for key, rules in (case.get("flags") or {}).items():
        assert sorted(raised.get(key, [])) == sorted(rules), key
    held = {r["claim_id"]: r["pending_review"] for r in found.apply(results).to_pylist()}
    for claim_id, cols in (case.get("expect") or {}).items():
        if "pending_review" in cols:
            assert held[claim_id] == fen(cols["pending_review"]), claim_id
