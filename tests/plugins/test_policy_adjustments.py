"""``adjust by <name> { … }``: a plugin's point adjustment named in a policy, resolved against
the registry and applied to the pools at compile time (the run evaluates the rewritten plan)."""
from __future__ import annotations

import pytest

from yibao.core.points.plan import POINT_SCALE as PT
from yibao.dsl.compiler import check_text, compile_text
from yibao.dsl.parser import parse
from yibao.dsl.printer import format_policy

from .plugin_helpers import HEADER, shipped_registry

POOL = '''attribute sex: int
grouper drg { tables chs_drg_11 }
pool inp {
  applies when setting = inpatient
  group by drg
  budget 1_000_000 yuan
  base points from "points.csv"
  sharing keep 50% surplus, bear 50% overrun
  point value budget / points
}
'''
TILT = '''adjust by tcm_tilt {
  groups from "tcm_points.csv"
  institution_factor 1.1
  institution_column hospital_tcm
  separate_budget 300_000 yuan
  keep 80%
  bear 20%
}
'''


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "points.csv").write_text("group,points,avg_cost\nA,100,100\n", encoding="utf-8")
    (tmp_path / "tcm_points.csv").write_text("group,points,avg_cost\nTCM1,120,90\n",
                                             encoding="utf-8")
    return tmp_path


def compile_(body, folder, registry=None):
    return compile_text(HEADER + body, "t.yb", folder, registry or shipped_registry())


def test_tilt_from_policy_equals_the_tilt_applied_in_python(folder):
    from yibao.plugins.tcm import points as tcm_points
    plan = compile_(POOL + TILT, folder)
    bare = compile_(POOL, folder).provider
    tilt = tcm_points.TcmTilt(groups=(("TCM1", 120 * PT),), avg_cost=(("TCM1", 9_000),),
                              institution_factor=1_100_000, separate_budget=30_000_000,
                              keep=800_000, bear=200_000)
    assert plan.provider == tcm_points.apply(bare, tilt)
    assert [p.name for p in plan.provider.pools] == ["inp_tcm", "inp"]


def test_unknown_adjustment_is_e513_with_a_suggestion(folder):
    _, diags = check_text(HEADER + POOL + TILT.replace("tcm_tilt", "tcm_tlit"), "t.yb", folder,
                          shipped_registry())
    assert [d.code for d in diags] == ["E513"]
    assert "unknown point adjustment 'tcm_tlit'" in diags[0].message
    assert "tcm_tilt" in diags[0].hint


@pytest.mark.parametrize("line, message", [
    ("  institution_factr 1.1", "takes no figure 'institution_factr'"),
    ("  institution_column setting", "not a bool column 'setting'"),
    ('  keep "x"', "figure 'keep' must be a ratio"),
    ("  groups 3", "must be from \"file.csv\""),
    ("  pools nowhere", "no pool named 'nowhere'"),
])
def test_bad_figures_are_e513(folder, line, message):
    text = HEADER + POOL + "adjust by tcm_tilt {\n" + line + "\n}\n"
    _, diags = check_text(text, "t.yb", folder, shipped_registry())
    assert [d.code for d in diags] == ["E513"], diags
    assert message in diags[0].message


def test_adjust_by_prints_and_reparses(folder):
    text = HEADER + POOL + TILT
    printed = format_policy(parse(text, "t.yb"))
    assert "adjust by tcm_tilt {\n  groups from \"tcm_points.csv\"\n" in printed
    assert format_policy(parse(printed, "t.yb")) == printed
    assert compile_text(printed, "t.yb", folder, shipped_registry()).provider == \
        compile_(POOL + TILT, folder).provider


class Spy(dict):
    """A registry table that records which of its entries were read."""
    def __init__(self, *a):
        super().__init__(*a)
        self.read = set()

    def get(self, key, default=None):
        self.read.add(key)
        return super().get(key, default)


def test_adjustments_hook_registrations_are_read_by_a_compile(folder):
    import dataclasses
    reg = dataclasses.replace(shipped_registry())
    reg.adjustments = Spy(reg.adjustments)
    compile_text(HEADER + POOL + TILT, "t.yb", folder, reg)
    assert reg.adjustments.read == {"tcm_tilt"}
