"""The plan's version: ``yibao.plan/2`` added ``Layer.national`` and typed provider tests
(``Test.type``, the column's declared type). A ``/1`` plan, which has neither, still reads
(as /2, with their defaults); any other version is refused."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from yibao.core.plan import PLAN_VERSION, IRVersionError, Plan, Type
from yibao.core.points.plan import Test
from yibao.core.policy import Policy
from yibao.dsl.compiler import compile_policy

ROOT = Path(__file__).resolve().parents[2]


def as_version_1(plan: Plan) -> str:
    """The plan's JSON as yibao.plan/1 wrote it: no ``national``, no test ``type``."""
    def strip(value):
        if isinstance(value, dict):
            drop = {"national"} if value.get("@") == "Layer" else \
                {"type"} if value.get("@") == "Test" else set()
            return {k: strip(v) for k, v in value.items() if k not in drop}
        return [strip(v) for v in value] if isinstance(value, list) else value
    data = strip(json.loads(plan.to_json()))
    data["version"] = "yibao.plan/1"
    return json.dumps(data, ensure_ascii=False)


def test_the_version_is_2():
    assert PLAN_VERSION == "yibao.plan/2"
    assert compile_policy(ROOT / "city_configs" / "reference").version == PLAN_VERSION


def test_a_version_1_plan_reads_as_2():
    plan = compile_policy(ROOT / "city_configs" / "reference")
    old = as_version_1(plan)
    assert '"national"' not in old and "yibao.plan/1" in old
    assert Plan.from_json(old) == plan


def test_a_version_1_plan_with_provider_tests_reads_untyped():
    plan = compile_policy(ROOT / "city_configs" / "shanghai")
    back = Plan.from_json(as_version_1(plan))
    assert back.version == PLAN_VERSION
    assert [t.type for t in back.provider.pools[0].applies] == [None]
    assert [(t.column, t.op, t.value) for t in back.provider.pools[0].applies] == \
        [(t.column, t.op, t.value) for t in plan.provider.pools[0].applies]


def test_a_policy_holding_version_1_plans_reads():
    plan = compile_policy(ROOT / "city_configs" / "reference")
    data = json.loads(Policy.of(plan).to_json())
    data["versions"] = [json.loads(as_version_1(plan))]
    assert Policy.from_json(json.dumps(data, ensure_ascii=False)).first == plan


def test_other_versions_are_refused():
    text = compile_policy(ROOT / "city_configs" / "reference").to_json()
    for version in ("yibao.plan/0", "yibao.plan/3"):
        with pytest.raises(IRVersionError, match="yibao.plan/2"):
            Plan.from_json(text.replace(PLAN_VERSION, version))


def test_provider_tests_carry_their_columns_type():
    plan = compile_policy(ROOT / "city_configs" / "shanghai")
    declared = {c.name: c.type for c in plan.columns}
    tests = [t for p in plan.provider.pools for t in
             (*p.applies, *(t for a in p.adjustments for t in a.when))]
    assert tests and all(t.type is not None for t in tests)
    setting = next(t for t in tests if t.column == "setting")
    assert setting.type == Type("text", ("inpatient", "outpatient", "rehab"))
    assert all(t.type == declared[t.column] for t in tests if t.column in declared)
    assert Plan.from_json(plan.to_json()) == plan  # the types round-trip


def test_a_test_of_a_date_column_cannot_be_built():
    with pytest.raises(ValueError, match="date"):
        Test("discharge_date", ">=", 19000, Type("date"))
    assert Test("age", ">=", 80).kind == "int" and Test("tcm", "==", True).kind == "bool"
    assert Test("level", "in", ()).kind == "text"
