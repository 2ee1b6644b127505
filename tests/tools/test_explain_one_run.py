"""Explain is one settle run (issue 13): the reference settle hands its recorder to the
points oracle, so a claim's case class, the numbers behind it and its points are heard in
the run that settled it; explain neither calls the points oracle itself nor computes a
number of its own (the normal points B × k are the oracle's, as recorded)."""
from __future__ import annotations

from pathlib import Path

import pytest

from yibao.core import reference, trace
from yibao.core.explain import explain_claim, format_explanation
from yibao.core.points import reference as points_reference

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def jinhua(jinhua_settled):
    return jinhua_settled


def _normal_drg_claim(rows) -> dict:
    return next(x for x in rows if x["pool"] == "inpatient_drg" and x["case_class"] == "normal")


def test_the_points_oracle_runs_only_inside_the_settle_run(jinhua, monkeypatch):
    plan, claims, rows = jinhua
    inside, calls = [False], []
    real_settle, real_points = reference.settle, points_reference.claim_points

    def settle(*args, **kwargs):
        inside[0] = True
        try:
            return real_settle(*args, **kwargs)
        finally:
            inside[0] = False

    def claim_points(*args, **kwargs):
        calls.append(inside[0])
        return real_points(*args, **kwargs)
    monkeypatch.setattr(reference, "settle", settle)
    monkeypatch.setattr(points_reference, "claim_points", claim_points)
    ex = explain_claim(plan, claims, _normal_drg_claim(rows)["claim_id"])
    assert ex.provider.case_class == "normal"
    assert calls and all(calls), "explain called the points oracle outside the settle run"


def test_the_normal_points_printed_are_the_recorded_ones(jinhua, monkeypatch):
    """Were the oracle to report another B × k, explain would print it: the text has no
    arithmetic of its own."""
    plan, claims, rows = jinhua
    real = points_reference.claim_points

    def reporting_another_normal(plan_, pool, members, record=trace.ignore):
        def altered(event):
            if isinstance(event, trace.CaseClass) and event.numbers.get("kind") == "points":
                event = trace.CaseClass(event.claim_id, event.pool, event.group,
                                        {**event.numbers, "normal": 1_234_567},
                                        event.case_class, event.points)
            record(event)
        return real(plan_, pool, members, record=altered)
    monkeypatch.setattr(points_reference, "claim_points", reporting_another_normal)
    ex = explain_claim(plan, claims, _normal_drg_claim(rows)["claim_id"])
    assert "normal B × k = 123.4567" in format_explanation(ex)


def test_a_claim_of_a_two_version_pool_is_explained_as_settled(tmp_path):
    """Each version's claims are scored under its own plan, in the settle run explain
    records (the reference's versions path had no provider part)."""
    from tests.conformance.corpus import CORPUS, claims_table, compile_doc
    import yaml
    from yibao.core.engine import settle
    doc = yaml.safe_load((CORPUS / "provider_versions.yaml").read_text(encoding="utf-8"))
    policy = compile_doc("provider_versions", doc, tmp_path)
    claims = claims_table(doc["cases"][0]["claims"])
    for row in settle(policy, claims).results.to_pylist():
        ex = explain_claim(policy, claims, row["claim_id"])
        got = (None, None, None) if ex.provider is None else (
            ex.provider.pool, ex.provider.case_class, ex.provider.points)
        assert got == (row["pool"], row["case_class"], row["points"]), row["claim_id"]
        assert ex.result()["basic"] == row["basic"]
