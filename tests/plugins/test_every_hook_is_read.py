"""No hook leads nowhere: for every hook spec, what a plugin registers through it is read by a
compile-and-settle of a policy that names it (functions called, keys accumulated, validators
and stages run, groupers grouping, adjustments rewriting the pools). A new hook spec fails
``test_every_hook_spec_is_covered`` until a run reads its registrations and this file says
how."""
from __future__ import annotations

import dataclasses
from collections import Counter

import numpy as np
import pyarrow as pa
import pytest

from yibao.core.engine import settle
from yibao.core.grouping.drg import OUTPUT_SCHEMA
from yibao.core.plan import MONEY, Type
from yibao.core.reference import settle as settle_reference
from yibao.core.registry import FunctionDecl, KeyDecl, Stage, Validator
from yibao.dsl.compiler import compile_text
from yibao.plugins import hookspecs
from yibao.plugins.decls import AdjustmentDecl, GrouperDecl
from yibao.plugins.hookspecs import hookimpl
from yibao.plugins.manager import build_registry, make_plugin_manager

from plugin_helpers import HEADER, claims

READ = Counter()  # what the run read, by hook


def _double(x, *, n):
    READ["yibao_register_functions"] += 1
    return 2 * x


def _check(plan, columns, raw, n):
    READ["yibao_register_validators"] += 1
    return np.zeros(n, bool), []


def _stage(plan, results, claims_, context):
    READ["yibao_register_stages"] += 1
    return {"spy_seen": [1] * results.num_rows}


def _group(inputs, grouper=None):
    READ["yibao_register_groupers"] += 1
    n = inputs.num_rows
    return pa.table({"drg": ["G"] * n, "drg_status": ["ok"] * n, "mdc": ["M"] * n,
                     "adrg": ["A"] * n, "stopped_at_mdc": pa.nulls(n, pa.string()),
                     "stopped_at_adrg": pa.nulls(n, pa.string())}, schema=OUTPUT_SCHEMA)


@dataclasses.dataclass(frozen=True)
class NoFigures:
    pass


def _adjust(points_plan, params):
    READ["yibao_register_adjustments"] += 1
    return points_plan


class Spy:
    @hookimpl
    def yibao_register_functions(self, registry):
        registry.add_function(FunctionDecl("spy_double", (Type(MONEY),), Type(MONEY),
                                           "spy_double(x): 2x", _double))

    @hookimpl
    def yibao_register_keys(self, registry):
        registry.add_key(KeyDecl("ward", "hospital_id", "per hospital ward"))

    @hookimpl
    def yibao_register_validators(self, registry):
        registry.add_validator(Validator("spy_check", "spy", _check, claim_columns=()))

    @hookimpl
    def yibao_register_stages(self, registry):
        registry.add_stage(Stage("spy_stage", _stage, (("spy_seen", pa.int64()),), _stage,
                                 claim_columns=()))

    @hookimpl
    def yibao_register_groupers(self, registry):
        registry.add_grouper(GrouperDecl("spy_group", _group, tuple(OUTPUT_SCHEMA.names),
                                         "everything in group G"))

    @hookimpl
    def yibao_register_adjustments(self, registry):
        registry.add_adjustment(AdjustmentDecl("spy_adjust", _adjust, NoFigures, "nothing"))


POLICY = '''
layer basic "基本" {
  base spy_double(in_scope) - in_scope
  cap 100 fen per ward per year
}
grouper drg "spy" {
  by spy_group
}
pool inpatient "住院" {
  group by drg
  budget 1_000 yuan
  base points from "points.csv"
  point value budget / points
}
adjust by spy_adjust {
}
'''
# hook -> what the run does with its registrations (checked below)
COVERED = {"yibao_register_functions", "yibao_register_keys", "yibao_register_validators",
           "yibao_register_stages", "yibao_register_groupers", "yibao_register_adjustments"}


def test_every_hook_spec_is_covered():
    assert set(hookspecs.HOOKS) == COVERED


@pytest.mark.parametrize("backend", [settle, settle_reference], ids=["kernel", "reference"])
def test_a_run_reads_every_hooks_registrations(tmp_path, backend):
    registry = build_registry(make_plugin_manager(load_entry_points=False,
                                                  plugins=[("spy", Spy())]))
    (tmp_path / "points.csv").write_text("group,points,avg_cost\nG,100,1000\n", encoding="utf-8")
    READ.clear()
    plan = compile_text(HEADER + POLICY, "t.yb", base_dir=tmp_path, registry=registry)
    batch = claims({"claim_id": "c1", "person_id": "p1", "hospital_id": "w", "total": 80},
                   {"claim_id": "c2", "person_id": "p2", "hospital_id": "w", "total": 80})
    out = backend(plan, batch, registry).results
    # the ward key: two persons of one ward share the 100 fen cap
    assert out.column("basic").to_pylist() == [80, 20]
    assert out.column("group").to_pylist() == ["G", "G"]
    assert out.column("spy_seen").to_pylist() == [1, 1]
    unread = sorted(hook for hook in COVERED - {"yibao_register_keys"} if not READ[hook])
    assert not unread, f"registered but never read by the run: {unread}"
