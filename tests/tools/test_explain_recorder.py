"""Explain = the reference evaluator + a recorder: its numbers are the oracle's own (a change
to the oracle shows in explain), several versions are explained as settled, and a claim the
oracle refuses leaves no trace in the accounts explain names."""
from __future__ import annotations

from yibao.core import reference
from yibao.core.engine import settle
from yibao.core.explain import explain_claim, explain_claims, format_explanation
from yibao.core.policytest import claims_table
from yibao.core.settlement import IDENTITY
from yibao.dsl.versions import compile_versions

from .test_explain import WORKED
from .test_versions import claim, version

NOT_AMOUNTS = ("claim_id", *IDENTITY)  # explain gives a claim's amounts; results carry its ids too


def test_explain_is_the_oracle_not_a_copy(monkeypatch, reference_plan):
    """Break the oracle's rounding: explain follows it, so it cannot drift from the oracle."""
    claims = claims_table(WORKED, reference_plan)
    honest = explain_claim(reference_plan, claims, "A2").result()
    monkeypatch.setattr(reference, "round_half_up", lambda num, den: num // den - 1)
    broken = {r["claim_id"]: r for r in reference.settle(reference_plan, claims)
              .results.to_pylist()}["A2"]
    got = explain_claim(reference_plan, claims, "A2").result()
    assert got == {k: v for k, v in broken.items() if k not in NOT_AMOUNTS}
    assert got != honest


def test_a_mid_year_version_change_is_explained_as_settled(tmp_path):
    """Two versions of one structure (85% to June, 90% from July): the July claim is
    explained under the July version, its yearly cap used by the March claim of the earlier
    version, and every claim's numbers equal the kernel's."""
    version(tmp_path, "policy_h1.yb", "2024-01-01", "2024-06-30")
    version(tmp_path, "policy_h2.yb", "2024-07-01", "2025-12-31", tier2_level3="90%")
    policy = compile_versions(tmp_path)
    rows = [claim("m", "p", "2024-03-01"), claim("j", "p", "2024-07-15"),
            claim("o", "q", "2024-08-01")]
    table = claims_table(rows, policy.first)
    want = {r["claim_id"]: {k: v for k, v in r.items() if k not in NOT_AMOUNTS}
            for r in settle(policy, table).results.to_pylist()}
    explained = explain_claims(policy, table)
    assert {cid: ex.result() for cid, ex in explained.items()} == want
    july = explain_claim(policy, table, "j")
    assert july.policy == policy.last.name and july.result() == want["j"]
    assert july.layers[0].ratio == 900_000
    assert july.layers[0].caps[0].earlier == [("m", 3_587_000)]  # 42,200 yuan × 85%


def test_a_refused_claim_is_not_named_as_an_earlier_one():
    """c2 would take the person's yearly bands sum past int64: the oracle refuses it and rolls
    its accounts back; c3's explanation names c1 alone as the claim before it."""
    from tests.conformance.test_recorder import _refusing_batch
    plan, claims = _refusing_batch()
    ex = explain_claim(plan, claims, "c3")
    assert ex.result() == {k: v for k, v in settle(plan, claims).results.to_pylist()[-1]
                           .items() if k not in NOT_AMOUNTS}
    layer = ex.layers[0]
    assert [cid for cid, _ in layer.bands.earlier] == ["c1"]
    assert [cid for cid, _ in layer.caps[0].earlier] == ["c1"]
    assert "c2" not in format_explanation(ex)


def test_explain_reads_only_declared_columns(reference_plan):
    """yibao's own validators and stages say which claim columns they read, so explain reads
    the plan's columns and those, not the diagnosis lists (most of a claim file's bytes),
    nor family_id under a plan without a family key (the family check reads the key's own
    columns, which the plan names)."""
    from yibao.core.explain import explain_columns
    from yibao.dsl.plugin_registry import registry_for
    from .conftest import CONFIGS
    registry = registry_for(CONFIGS / "reference")
    assert registry.validators and registry.stages
    columns = explain_columns([reference_plan], registry)
    assert columns is not None and "person_id" in columns and "family_id" not in columns
    assert not {"principal_dx", "secondary_dx", "procedures"} & set(columns)
