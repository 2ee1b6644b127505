"""Which plugin checks act on a plan (``Validator.acts``): ``yibao explain --run`` settles a
claim's rows in plain Python only when none does (``reference.rows_apply``), so a check that
said it does not act where it rejects claims would let explain skip a reject. The family
check acts under the family key, the TCM check when the plan reads ``tcm_amount``; neither
acts on a plan with neither, and the family stage does not act without balances."""
from __future__ import annotations

from yibao.core import reference

from plugin_helpers import compile_policy_text, shipped_registry
from policy_texts import family_policy

PLAIN = """
layer basic "基本医保" {
  base in_scope - self_first
  ratio 70%
}
"""
TCM = """
attribute tcm_amount: money
layer basic "基本医保(中医倾斜)" {
  base in_scope - self_first
  ratio 68% + tcm_uplift(tcm_amount, in_scope, 10%)
}
"""


def acting(plan, registry) -> list:
    return [v.name for v in registry.validators if v.acts(plan)]


def test_the_family_and_tcm_checks_act_only_where_they_can_reject():
    from yibao.dsl.compiler import compile_text
    registry = shipped_registry()
    plain, tcm = compile_policy_text(PLAIN, registry), compile_policy_text(TCM, registry)
    family = compile_text(family_policy(), "family.yb", registry=registry)
    family = getattr(family, "first", family)
    assert acting(plain, registry) == []
    assert acting(tcm, registry) == ["tcm_amount_in_range"]
    assert acting(family, registry) == ["family_id_not_blank"]
    assert [s.name for s in registry.stages if s.acts({})] == []
    assert reference.rows_apply(plain, registry)
    assert not reference.rows_apply(tcm, registry) and not reference.rows_apply(family,
                                                                                 registry)
