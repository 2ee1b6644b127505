"""The flag syntax: printed back the same (yibao fmt), lowered to Plan.supervision, printed by
describe() (yibao plan), round-tripped through the plan and policy JSON, and compile errors."""
from __future__ import annotations

import pytest

from yibao.core.plan import Plan
from yibao.core.policy import Policy
from yibao.core.supervision.plan import (AboveGroupMean, CcShare, ListedGroups, Readmit,
                                         SevereShare, ShortStay, Supervision)
from yibao.dsl.compiler import check_text
from yibao.dsl.parser import parse
from yibao.dsl.printer import format_policy
from supervision_helpers import HEADER, city

ALL = """
flag split_stay "分解住院" {
  applies when setting = inpatient and hospital_level >= 2
  readmission within 3 days at the same hospital
  severity review
  effect review
}
flag elsewhere "短期再入院" {
  readmission within 15 days at another hospital
}
flag long_stay "超长住院" {
  los above 300% of the group mean
}
flag costly "费用异常" {
  cost above 3 of the group mean
}
flag light "低标准入院" {
  stay at most 2 days with weight below 50%
}
flag listed "门诊可治" {
  group in {"EE15", CD19}
}
flag upcoding "高套病组" {
  cc share above 150% of the city, at least 10 cases
  severity serious
}
flag refusal "推诿重患" {
  severe share below 50% of the level, weight at least 200%
}
"""


def test_lowered_nodes(tmp_path):
    sup = city(tmp_path, ALL).supervision
    rules = [f.rule for f in sup.flags]
    assert rules == [Readmit(3, True), Readmit(15, False), AboveGroupMean("los", 3_000_000),
                     AboveGroupMean("cost", 3_000_000), ShortStay(2, 500_000),
                     ListedGroups(("CD19", "EE15")), CcShare(1_500_000, 10),
                     SevereShare(500_000, 2_000_000, 1)]
    first = sup.flags[0]
    assert (first.severity, first.effect, first.label) == ("review", "review", "分解住院")
    assert [t.describe() for t in first.applies] == ["setting == 'inpatient'",
                                                     "hospital_level >= 2"]
    assert [f.level for f in sup.flags].count("hospital") == 2


def test_printer_round_trip(tmp_path):
    text = HEADER + ALL
    once = format_policy(parse(text, "t.yb"))
    assert format_policy(parse(once, "t.yb")) == once
    assert "  readmission within 3 days at the same hospital\n" in once
    assert city(tmp_path, once[len(format_policy(parse(HEADER, "t.yb"))):]).supervision == \
        city(tmp_path, ALL).supervision


def test_describe_and_json_round_trip(tmp_path):
    plan = city(tmp_path, ALL)
    text = plan.describe()
    assert "supervision:\n  flag split_stay '分解住院': readmission within 3 days at the same " \
           "hospital; per claim; applies setting == 'inpatient' and hospital_level >= 2; " \
           "severity review; effect review" in text
    assert "flag upcoding '高套病组': cc share above 150% of the city, at least 10 cases; " \
           "per hospital" in text
    again = Plan.from_json(plan.to_json())
    assert again.supervision == plan.supervision and '"yibao.supervision/1"' in plan.to_json()
    policy = Policy.of(plan)
    assert Policy.from_json(policy.to_json()).first.supervision == plan.supervision


def test_unknown_supervision_version_refused(tmp_path):
    text = city(tmp_path, ALL).to_json().replace('"yibao.supervision/1"', '"yibao.supervision/9"')
    with pytest.raises(ValueError, match="supervision version"):
        Plan.from_json(text)


def test_plan_without_flags_has_no_supervision(tmp_path):
    plan = city(tmp_path, "")
    assert plan.supervision is None and "supervision:" not in plan.describe()
    assert Plan.from_json(plan.to_json()) == plan


def codes(tmp_path, flags: str, header: str = HEADER) -> list:
    city(tmp_path, "")  # writes the CSVs
    _, diags = check_text(header + flags, "t.yb", tmp_path)
    return [d.code for d in diags]


NO_POOL = HEADER[:HEADER.index("grouper")]


@pytest.mark.parametrize("flags, code, header", [
    ('flag a { severity review }', "E801", HEADER),
    ('flag a {\n readmission within 3 days at the same hospital\n los above 2 of the group '
     'mean\n}', "E801", HEADER),
    ('flag a { los above 200% of the group mean }', "E802", NO_POOL),
    ('flag a {\n readmission within 3 days at the same hospital\n severity urgent\n}', "E803",
     HEADER),
    ('flag a {\n cc share above 2 of the city\n effect review\n}', "E804", HEADER),
    ('flag a { cost above 0% of the group mean }', "E805", HEADER),
    ('flag a {\n readmission within 3 days at the same hospital\n severity review\n '
     'severity notice\n}', "E111", HEADER),
    ('flag a { readmission within 3 days at the same hospital }\n'
     'flag a { readmission within 3 days at the same hospital }', "E202", HEADER),
    ('flag a {\n applies when sex = 1\n readmission within 3 days at the same hospital\n}',
     "E201", HEADER),
    ('flag a { readmission within 1.5 days at the same hospital }', "E210", HEADER),
])
def test_compile_errors(tmp_path, flags, code, header):
    assert code in codes(tmp_path, flags, header)


def test_readmission_flags_need_no_pool(tmp_path):
    assert codes(tmp_path, 'flag a { readmission within 3 days at the same hospital }',
                 NO_POOL) == []


def test_names_that_became_keywords_still_work_as_columns(tmp_path):
    """`los`, `level`, `cost`, `weight`, `flag` … are keywords only inside a flag block."""
    extra = ("attribute weight: int\nattribute cost: money\nattribute city: text\n"
             "layer extra {\n  applies when weight > 2 and los > 1 and city = \"x\"\n"
             "  base cost\n  ratio 10%\n}\n")
    assert codes(tmp_path, extra) == []


def test_supervision_is_a_node():
    assert Supervision(()).describe() == "supervision:"
