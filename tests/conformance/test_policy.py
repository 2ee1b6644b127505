"""The compiled unit: one Policy (versions + provider payment) and one settle per backend."""
import pytest

import yibao.core.engine as engine
import yibao.core.reference as reference
import yibao.core.settlement as settlement
from yibao.core.policy import Policy, PolicyShapeError
from yibao.dsl.compiler import compile_text

from .corpus import claims_table, compile_doc, load_corpus

DOCS = {stem: doc for stem, doc, _ in load_corpus()}
CLAIMS = [{"claim_id": "A", "discharge_date": "2024-06-01", "total": 1_500},
          {"claim_id": "B", "discharge_date": "2024-07-10", "total": 1_200}]


def version_path_raises(*args, **kwargs):
    raise AssertionError("a single-plan settle entered the version code")


@pytest.mark.parametrize("backend", [engine, reference], ids=["kernel", "reference"])
def test_a_single_plan_never_enters_version_code(backend, monkeypatch, tmp_path):
    policy = compile_doc("deductibles", DOCS["deductibles"], tmp_path)
    assert policy.single
    for name in ("choose_versions", "check_versions", "check_spans", "version_index"):
        monkeypatch.setattr(settlement, name, version_path_raises)
        if hasattr(backend, name):
            monkeypatch.setattr(backend, name, version_path_raises)
    monkeypatch.setattr(backend, "_settle_versions", version_path_raises)
    out = backend.settle(policy, claims_table(CLAIMS))
    assert out.results.num_rows == 2


@pytest.mark.parametrize("backend", [engine, reference], ids=["kernel", "reference"])
def test_several_versions_go_through_the_version_code(backend, monkeypatch, tmp_path):
    """The other side of the test above: it can fail."""
    policy = compile_doc("versions", DOCS["versions"], tmp_path)
    monkeypatch.setattr(backend, "_settle_versions", version_path_raises)
    with pytest.raises(AssertionError, match="entered the version code"):
        backend.settle(policy, claims_table(CLAIMS))


@pytest.mark.parametrize("stem", ["versions", "provider_pool", "deductibles"])
def test_policy_round_trips_through_json_and_prints_whole(stem, tmp_path):
    policy = compile_doc(stem, DOCS[stem], tmp_path)
    again = Policy.from_json(policy.to_json())
    assert again == policy
    text = policy.describe()
    assert text.startswith(f"policy {policy.name} ({len(policy.versions)} version")
    for plan in policy.versions:
        assert plan.describe().rstrip("\n") in text


def test_provider_payment_is_held_by_the_policy(tmp_path):
    policy = compile_doc("provider_pool", DOCS["provider_pool"], tmp_path)
    assert policy.provider is not None and policy.provider == policy.first.provider
    assert "pool drg" in policy.describe() or "drg" in policy.describe()


def test_a_policy_has_at_least_one_version():
    with pytest.raises(PolicyShapeError):
        Policy("empty", ())
    with pytest.raises(PolicyShapeError):
        Policy.of([])


def test_a_foreign_json_version_is_refused(tmp_path):
    policy = compile_doc("deductibles", DOCS["deductibles"], tmp_path)
    with pytest.raises(PolicyShapeError, match="yibao.policy/1"):
        Policy.from_json(policy.to_json().replace("yibao.policy/1", "yibao.policy/0"))


def test_the_reference_imports_nothing_from_the_engine():
    import ast
    import inspect
    tree = ast.parse(inspect.getsource(reference))
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert not any(m and (m.endswith("engine") or m.endswith("versions")) for m in imported)
