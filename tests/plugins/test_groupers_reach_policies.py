"""Plugins reach policies: a policy names a grouper plugin (``grouper … { by NAME }``) and
the run — kernel and reference, and explain — groups with it; an unknown name is E703 with
the closest registered one; yibao's own CHS-DRG grouper is a plugin like any other. And no
hook's registrations are left unread by a run."""
from __future__ import annotations

import pyarrow as pa
import pytest

from yibao.core.engine import settle
from yibao.core.explain import explain_claim
from yibao.core.grouping.drg import OUTPUT_SCHEMA
from yibao.core.reference import settle as settle_reference
from yibao.dsl.compiler import compile_text
from yibao.dsl.errors import PolicyError
from yibao.plugins.decls import GrouperDecl
from yibao.plugins.hookspecs import hookimpl
from yibao.plugins.manager import build_registry, make_plugin_manager

from plugin_helpers import HEADER, claims

BODY = '''
layer basic "基本" {
  base in_scope
  ratio 80%
}
grouper drg "按医院级别" {
  by GROUPER
}
pool inpatient "住院" {
  group by drg
  budget 1_000 yuan
  base points from "points.csv"
  point value budget / points
}
'''
CALLS = []


def by_level(inputs: pa.Table, grouper=None) -> pa.Table:
    """Every claim in group L1 — the grouping a city's own plugin might do."""
    CALLS.append((inputs.num_rows, grouper.name if grouper else None))
    n = inputs.num_rows
    return pa.table({"drg": ["L1"] * n, "drg_status": ["ok"] * n,
                     "mdc": ["MDCX"] * n, "adrg": ["XL"] * n,
                     "stopped_at_mdc": pa.nulls(n, pa.string()),
                     "stopped_at_adrg": pa.nulls(n, pa.string())}, schema=OUTPUT_SCHEMA)


class LevelGrouper:
    @hookimpl
    def yibao_register_groupers(self, registry):
        registry.add_grouper(GrouperDecl("level_drg", by_level, tuple(OUTPUT_SCHEMA.names),
                                         "every claim in group L1"))


@pytest.fixture
def registry():
    return build_registry(make_plugin_manager(load_entry_points=False,
                                              plugins=[("level", LevelGrouper())]))


def compiled(tmp_path, registry, grouper: str):
    (tmp_path / "points.csv").write_text("group,points,avg_cost\nL1,100,1000\n",
                                         encoding="utf-8")
    text = HEADER + BODY.replace("GROUPER", grouper)
    return compile_text(text, "t.yb", base_dir=tmp_path, registry=registry)


def batch():
    return claims({"claim_id": "c1", "person_id": "p1", "total": 1_000},
                  {"claim_id": "c2", "person_id": "p2", "total": 2_000})


@pytest.mark.parametrize("backend", [settle, settle_reference], ids=["kernel", "reference"])
def test_a_policy_groups_with_the_plugin_it_names(tmp_path, registry, backend):
    plan = compiled(tmp_path, registry, "level_drg")
    assert plan.groupers[0].by == "level_drg"
    CALLS.clear()
    out = backend(plan, batch(), registry).results.to_pylist()
    assert [r["group"] for r in out] == ["L1", "L1"]
    assert [r["pool"] for r in out] == ["inpatient", "inpatient"]
    assert CALLS and CALLS[0][1] == "drg"  # the run handed the plugin the policy's grouper


def test_explain_shows_the_plugin_group(tmp_path, registry):
    plan = compiled(tmp_path, registry, "level_drg")
    ex = explain_claim(plan, batch(), "c1", registry)
    assert ex.provider.group == "L1"


def test_yibao_chs_drg_is_the_default_and_a_plugin(tmp_path, registry):
    """Without ``by`` the policy groups with ``chs_drg``, and the run takes it from the
    registry like any other grouper."""
    import dataclasses
    plan = compiled(tmp_path, registry, "chs_drg")
    assert plan.groupers[0].by == "chs_drg" and registry.groupers["chs_drg"].plugin == "builtin"
    builtin, seen = registry.groupers["chs_drg"], []
    registry.groupers["chs_drg"] = dataclasses.replace(
        builtin, run=lambda inputs, g=None: (seen.append(g.name), builtin.run(inputs, g))[1])
    out = settle(plan, batch(), registry).results.to_pylist()
    assert seen == ["drg"]
    assert [r["grouping_status"] for r in out] == ["invalid_principal_dx"] * 2  # no codes


def test_an_unknown_grouper_is_e703_with_the_closest_name(tmp_path, registry):
    with pytest.raises(PolicyError) as info:
        compiled(tmp_path, registry, "level_drgg")
    assert info.value.codes == ["E703"]
    assert "did you mean 'level_drg'?" in str(info.value)


def test_the_grouper_plugin_round_trips_through_the_plan_json(tmp_path, registry):
    from yibao.core.plan import Plan
    plan = compiled(tmp_path, registry, "level_drg")
    assert Plan.from_json(plan.to_json()).groupers[0].by == "level_drg"
    assert "by plugin grouper level_drg" in plan.describe()
