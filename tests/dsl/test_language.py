"""Language features beyond the reference policy: registry functions and keys, CSV tables,
Chinese names, compile_policy on a folder, the grammar's terminal names."""
import shutil
from pathlib import Path

import pytest

from yibao.core import plan as P
from yibao.core.plan import Type
from yibao.core.registry import FunctionDecl, KeyDecl, default_registry
from yibao.dsl import parser
from yibao.dsl.compiler import compile_file, compile_policy, compile_text
from yibao.dsl.errors import PolicyError

HERE = Path(__file__).parent
HEADER = 'policy "t" {\n  effective 2024-01-01 to 2024-12-31\n}\n'
MONEY, INT = Type("money"), Type("int")


def registry():
    reg = default_registry()
    reg.add_key(KeyDecl("family", "family_id", "household"))
    reg.add_function(FunctionDecl("tcm_amount", (MONEY, INT), MONEY, "TCM part of an amount"))
    return reg


def codes(text, **kw):
    with pytest.raises(PolicyError) as info:
        compile_text(text, "t.yb", **kw)
    return info.value.codes


def test_no_anonymous_terminals():
    names = parser.terminal_names()
    assert names and not [n for n in names if n.startswith("__")]


def test_plugin_function_is_type_checked_and_lowered_to_call():
    text = HEADER + "layer a {\n  base tcm_amount(in_scope, los) - 100\n}\n"
    plan = compile_text(text, registry=registry())
    call = plan.layers[0].base.left
    assert call == P.Call(MONEY, "tcm_amount", (P.Column(MONEY, "in_scope"), P.Column(INT, "los")))
    assert "los" in [c.name for c in plan.columns]
    bad = HEADER + "layer a {\n  base tcm_amount(in_scope, low_income)\n}\n"
    assert codes(bad, registry=registry()) == ["E210"]
    assert codes(bad.replace(", low_income", ""), registry=registry()) == ["E203"]
    assert codes(text) == ["E203"]  # not in the default registry


def test_family_key_needs_the_registry_key():
    text = HEADER + "layer a {\n  base in_scope\n  cap 5_000 yuan per family per year\n}\n"
    assert codes(text) == ["E204"]
    plan = compile_text(text, registry=registry())
    assert plan.layers[0].caps[0].key == P.Key("family", "family_id")
    assert "family_id" in [c.name for c in plan.columns]


def test_features_policy_with_csv(tmp_path):
    plan = compile_file(HERE / "valid" / "features.yb", registry=registry())
    assert plan.year_start == (7, 1)
    assert dict(plan.table("by_scheme").rows)[(1, False)] == 700_000
    assert plan.table("extra").rows == (((0,), 100_050), ((1,), 30_000))
    ded = plan.layer("基本").deductible
    assert ded.continuing == P.Column(Type("bool"), "referral")
    # later `when` clauses win: the outermost Cond is the last clause
    assert ded.amount.test == P.Binary(Type("bool"), "==", P.Column(
        Type("text", ("tier1", "tier2")), "tier"), P.Const(Type("text", ("tier1", "tier2")), 1))
    assert plan.layer("tcm").caps[0].name == "年度"


def test_csv_only_from_the_policy_folder(tmp_path):
    folder = tmp_path / "city"
    folder.mkdir()
    (tmp_path / "outside.csv").write_text("los,value\n1,2\n")
    (folder / "link.csv").symlink_to(tmp_path / "outside.csv")
    for ref, code in (("../outside.csv", "E304"), ("/etc/passwd", "E304"), ("link.csv", "E304"),
                      ("missing.csv", "E305")):
        text = HEADER + f'table t (los) -> money from "{ref}"\nlayer a {{\n  base t[los]\n}}\n'
        (folder / "policy.yb").write_text(text, encoding="utf-8")
        with pytest.raises(PolicyError) as info:
            compile_policy(folder)
        assert info.value.codes == [code], ref
    text = HEADER + 'table t (los) -> money from "t.csv"\nlayer a {\n  base t[los]\n}\n'
    assert codes(text) == ["E305"]  # compiled from text: no folder to read from


def test_compile_policy_accepts_a_folder_or_a_file(tmp_path):
    src = HERE.parents[1] / "city_configs" / "reference" / "policy.yb"
    shutil.copy(src, tmp_path / "policy.yb")
    assert compile_policy(tmp_path).layers == compile_policy(tmp_path / "policy.yb").layers


def test_text_literals_compile_to_domain_indices():
    text = HEADER + ("layer a {\n  applies when setting in {outpatient, \"rehab\"} and "
                     "hospital_level != 2\n  base in_scope\n}\n")
    applies = compile_text(text).layers[0].applies
    assert applies.left.values == (1, 2)
    assert applies.right.right == P.Const(Type("int", (1, 2, 3)), 2)


def test_bare_numbers_take_the_unit_of_their_place():
    text = HEADER + "layer a {\n  base in_scope * 0.5 - 100\n  ratio 0.85\n}\n"
    layer = compile_text(text).layers[0]
    assert layer.base.left.right == P.Const(Type("ratio"), 500_000)
    assert layer.base.right == P.Const(MONEY, 10_000)
    assert layer.ratio == P.Const(Type("ratio"), 850_000)


def test_newlines_continue_after_operators_and_commas():
    text = HEADER + ("layer a {\n  base in_scope -\n    self_first\n  deductible 1_000 yuan per "
                     "person per year,\n    500 yuan when low_income\n}\n")
    layer = compile_text(text).layers[0]
    assert layer.base.op == "-" and layer.deductible.amount.test.name == "low_income"


@pytest.mark.parametrize("key,message", [
    ("1", "expected a word or quoted text, found a number"),
    ("true", "expected a word or quoted text, found 'true'"),
])
def test_text_key_of_wrong_kind_reads_naturally(key, message):
    from yibao.dsl.compiler import check_text
    text = ('policy "t" {\n  region "test"\n  effective 2024-01-01 to 2024-12-31\n}\n'
            f"table r (tier) -> ratio {{ {key}: 50% }}\n")
    _, diags = check_text(text, "t.yb")
    assert [(d.code, d.message) for d in diags] == [("E210", message)]


def test_text_key_of_closed_domain_names_the_values():
    from yibao.dsl.compiler import check_text
    text = ('policy "t" {\n  region "test"\n  effective 2024-01-01 to 2024-12-31\n}\n'
            "table r (setting) -> ratio { 1: 50% }\n")
    _, diags = check_text(text, "t.yb")
    assert [(d.code, d.message) for d in diags] == [
        ("E210", "expected one of {inpatient, outpatient, rehab}, found a number")]
