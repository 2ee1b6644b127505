"""Provider explain is the points oracle plus a recorder (issue 13): ``claim_points`` of
``core/points/reference.py`` reports each claim's ``CaseClass`` (the numbers that decided it),
``PointsAdjusted`` and ``ClaimPoints`` (``core/trace.py``), and ``yibao explain`` builds its
provider block from those events, not from a second reading of the rules."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from yibao.core import trace
from yibao.core.explain import explain_claim, format_explanation
from yibao.core.points import reference as points_reference
from yibao.core.provider import group_claims_reference, prepared

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def jinhua(jinhua_settled):
    return jinhua_settled


def _pool_rows(plan, claims, name):
    rows = group_claims_reference(plan, prepared(plan, claims)).to_pylist()
    return plan.provider.pool(name), rows


def test_the_oracle_reports_what_it_returns_and_a_recorder_changes_nothing(jinhua):
    plan, claims, _ = jinhua
    pool, rows = _pool_rows(plan, claims, "inpatient_drg")
    events = []
    recorded = points_reference.claim_points(plan.provider, pool, rows, record=events.append)
    assert recorded == points_reference.claim_points(plan.provider, pool, rows)
    final = [e for e in events if isinstance(e, trace.ClaimPoints)]
    assert [(e.claim_id, e.group, e.case_class, e.points, list(e.adjustments)) for e in final] \
        == [(r["claim_id"], r["group"], r["case_class"], r["points"], r["adjustments"])
            for r in recorded]
    cases = [e for e in events if isinstance(e, trace.CaseClass)]
    assert [e.claim_id for e in cases] == [e.claim_id for e in final]
    assert {e.case_class for e in cases} >= {"normal", "high"}
    normal = next(e for e in cases if e.case_class == "normal")
    assert normal.points == normal.numbers["normal"] and normal.numbers["B"] > 0


def test_every_provider_event_kind_is_reported():
    """Over Shanghai's pool (its elderly adjustment applies at age 80) the points oracle
    sends every kind of provider event (one nobody sends would be a step explain silently
    misses)."""
    from tests.conformance.test_recorder import POINTS_EVENTS
    from yibao.core.generate import generate_claims
    from yibao.dsl.compiler import compile_policy
    plan, claims = compile_policy(ROOT / "city_configs" / "shanghai"), generate_claims(1_000)
    rows = group_claims_reference(plan, prepared(plan, claims)).to_pylist()
    heard = set()
    for pool in plan.provider.pools:
        points_reference.claim_points(plan.provider, pool, rows,
                                      record=lambda e: heard.add(type(e)))
    assert heard == POINTS_EVENTS


def test_explain_shows_the_recorded_points_not_its_own(jinhua, monkeypatch):
    """Were the oracle to report other numbers, explain would print them: it has no
    arithmetic of its own for a claim's case class and points."""
    plan, claims, rows = jinhua
    r = next(x for x in rows if x["pool"] == "inpatient_drg" and x["case_class"] == "normal")
    real = points_reference.claim_points

    def reporting_other_numbers(plan_, pool, members, record=trace.ignore):
        def altered(event):
            if isinstance(event, trace.ClaimPoints):
                event = trace.ClaimPoints(event.claim_id, event.pool, event.group, "high",
                                          424_242, event.adjustments)
            elif isinstance(event, trace.CaseClass):
                event = trace.CaseClass(event.claim_id, event.pool, event.group,
                                        {**event.numbers, "B": 777_777}, "high", 424_242)
            record(event)
        return real(plan_, pool, members, record=altered)

    monkeypatch.setattr(points_reference, "claim_points", reporting_other_numbers)
    ex = explain_claim(plan, claims, r["claim_id"])
    assert (ex.provider.case_class, ex.provider.points) == ("high", 424_242)
    assert ex.provider.numbers["B"] == 777_777 and ex.provider.base_class == "high"
    text = format_explanation(ex)
    assert "points 42.4242" in text
    assert f"point value {plan.provider.pool('inpatient_drg').point_value.describe()}" in text


def test_explain_imports_no_private_provider_function():
    """explain uses the provider, grouping and points modules' public names only."""
    tree = ast.parse((ROOT / "core" / "explain.py").read_text(encoding="utf-8"))
    private = [f"{node.module}.{a.name}" for node in ast.walk(tree)
               if isinstance(node, ast.ImportFrom) and node.module
               and node.module.lstrip(".").split(".")[0] in ("provider", "points", "grouping")
               for a in node.names if a.name.startswith("_")]
    assert private == []
