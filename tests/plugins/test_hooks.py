"""The hook surface and the manager: every hook documented and tested, builtin features
registered through the hooks, check_pending, the allowlist, errors that name the plugin."""
import inspect
import re
from importlib import metadata
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from yibao.core.engine import settle
from yibao.core.plan import INT, MONEY, RATIO, Type
from yibao.core.points.plan import PointsPlan, Pool
from yibao.core.registry import FunctionDecl, KeyDecl, Stage, Validator
from yibao.plugins import hookspecs
from yibao.plugins.decls import AdjustmentDecl, GrouperDecl
from yibao.plugins.hookspecs import hookimpl
from yibao.plugins.manager import (PluginError, build_registry, make_plugin_manager,
                                   parse_allowlist, plugin_info)

from plugin_helpers import claims, compile_policy_text

DOCS = Path(__file__).resolve().parents[2] / "docs" / "plugins.md"


def bare(*plugins):
    """A manager with the builtin plugin and ``plugins`` ((name, obj) pairs), no entry points."""
    return make_plugin_manager(load_entry_points=False, plugins=plugins)


# -- the surface ---------------------------------------------------------------------------

def test_every_hook_is_prefixed_documented_and_has_its_own_test():
    specs = [name for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
             if hasattr(fn, "yibao_spec")]
    assert sorted(specs) == sorted(hookspecs.HOOKS)
    docs = DOCS.read_text(encoding="utf-8")
    for name in specs:
        fn = getattr(hookspecs, name)
        assert name.startswith("yibao_")
        assert fn.__doc__ and "\n" not in fn.__doc__.strip(), f"{name}: one-line docstring"
        assert inspect.signature(fn).parameters["registry"].annotation, f"{name}: typed"
        assert fn.yibao_spec.get("firstresult") is False  # stated in the module docstring
        assert f"`{name}" in docs, f"{name} is not in docs/plugins.md"
        assert f"test_hook_{name.removeprefix('yibao_')}" in globals(), f"{name} has no test"


def test_builtin_features_come_through_the_hooks():
    pm = bare()
    reg = build_registry(pm)
    assert reg.keys["person"] == KeyDecl("person", "person_id", "the insured person", "builtin")
    assert reg.functions["ratio_of"].plugin == "builtin"
    assert reg.groupers["chs_drg"].plugin == "builtin"
    assert plugin_info(pm)[0][0] == "builtin"


# -- one test per hook ---------------------------------------------------------------------

class Everything:
    """A plugin implementing every hook once."""
    __version__ = "9.9"

    @hookimpl
    def yibao_register_functions(self, registry):
        registry.add_function(FunctionDecl(
            "double", (Type(MONEY),), Type(MONEY), "double(x): 2x", lambda x, *, n: 2 * x))

    @hookimpl
    def yibao_register_keys(self, registry):
        registry.add_key(KeyDecl("hospital", "hospital_id", "per hospital"))

    @hookimpl
    def yibao_register_validators(self, registry):
        registry.add_validator(Validator(
            "no_h9", "hospital_h9", lambda plan, cols, raw, n: (
                np.asarray(pa.compute.equal(raw["hospital_id"], "h9").to_numpy(
                    zero_copy_only=False), bool), "h9 is closed")))

    @hookimpl
    def yibao_register_stages(self, registry):
        def run(plan, results, claims, context):
            return {"half_self_pay": results["self_pay"].to_numpy() // 2}
        registry.add_stage(Stage("half", run, (("half_self_pay", pa.int64()),), run))

    @hookimpl
    def yibao_register_groupers(self, registry):
        registry.add_grouper(GrouperDecl(
            "by_level", lambda t: pa.table({"grp": pa.compute.cast(t["hospital_level"], pa.string())}),
            ("grp",), "group = hospital level"))

    @hookimpl
    def yibao_register_adjustments(self, registry):
        registry.add_adjustment(AdjustmentDecl(
            "rename", lambda plan, params: PointsPlan(tuple(
                Pool(**{**p.__dict__, "name": params}) for p in plan.pools)), str, "rename pools"))


def everything_registry():
    return build_registry(bare(("everything", Everything())))


def test_hook_register_functions():
    reg = everything_registry()
    assert reg.functions["double"].plugin == "everything"
    plan = compile_policy_text('layer a "a" {\n  base double(in_scope) - in_scope\n}\n', reg)
    res = settle(plan, claims({"claim_id": "c", "person_id": "p", "total": 123}), reg)
    assert res.results["a"].to_pylist() == [123]


def test_hook_register_keys():
    reg = everything_registry()
    plan = compile_policy_text('layer a "a" {\n  base in_scope\n  cap 100 fen per hospital '
                               'per year\n}\n', reg)
    t = claims({"claim_id": "c1", "person_id": "p1", "total": 80},
               {"claim_id": "c2", "person_id": "p2", "total": 80})  # two persons, one hospital
    assert settle(plan, t, reg).results["a"].to_pylist() == [80, 20]


def test_hook_register_validators():
    reg = everything_registry()
    plan = compile_policy_text('layer a "a" {\n  base in_scope\n}\n', reg)
    t = claims({"claim_id": "c1", "person_id": "p1", "total": 80, "hospital_id": "h9"},
               {"claim_id": "c2", "person_id": "p2", "total": 80})
    out = settle(plan, t, reg)
    assert out.rejects.select(["claim_id", "reason", "message"]).to_pylist() == [
        {"claim_id": "c1", "reason": "hospital_h9", "message": "h9 is closed"}]


def test_hook_register_stages():
    reg = everything_registry()
    plan = compile_policy_text('layer a "a" {\n  base in_scope\n  ratio 50%\n}\n', reg)
    out = settle(plan, claims({"claim_id": "c", "person_id": "p", "total": 100}), reg)
    assert out.results["self_pay"].to_pylist() == [50]
    assert out.results["half_self_pay"].to_pylist() == [25]


def test_hook_register_groupers():
    reg = everything_registry()
    t = claims({"claim_id": "c", "person_id": "p", "total": 1, "hospital_level": 2})
    assert reg.groupers["by_level"].run(t)["grp"].to_pylist() == ["2"]
    assert set(reg.groupers) == {"chs_drg", "by_level"}


def test_hook_register_adjustments():
    reg = everything_registry()
    plan = PointsPlan((Pool("inp", 100),))
    assert reg.adjustments["rename"].apply(plan, "x").pools[0].name == "x"
    assert reg.adjustments["rename"].plugin == "everything"


# -- manager behaviour -----------------------------------------------------------------------

class Misspelt:
    @hookimpl
    def yibao_register_function(self, registry):  # missing the s
        pass


def test_check_pending_catches_a_misspelt_hook_and_names_the_plugin():
    with pytest.raises(PluginError, match=r"plugin 'typo'.*yibao_register_function"):
        bare(("typo", Misspelt()))


class Raises:
    @hookimpl
    def yibao_register_keys(self, registry):
        raise KeyError("boom")


def test_a_failing_hook_names_the_plugin_and_the_hook():
    with pytest.raises(PluginError, match=r"plugin 'broken': hook yibao_register_keys failed"):
        build_registry(bare(("broken", Raises())))


class BadImpl:
    @hookimpl
    def yibao_register_functions(self, registry):
        def impl(x, *, n):
            raise ZeroDivisionError("no")
        registry.add_function(FunctionDecl("bad", (Type(MONEY),), Type(MONEY), "bad", impl))


def test_a_function_failing_at_settlement_names_the_plugin():
    reg = build_registry(bare(("badfn", BadImpl())))
    plan = compile_policy_text('layer a "a" {\n  base bad(in_scope)\n}\n', reg)
    with pytest.raises(RuntimeError, match=r"plugin 'badfn': function 'bad' failed"):
        settle(plan, claims({"claim_id": "c", "person_id": "p", "total": 1}), reg)


class Clash:
    @hookimpl
    def yibao_register_keys(self, registry):
        registry.add_key(KeyDecl("person", "other_id", "not the person"))


def test_a_clash_names_both_plugins():
    with pytest.raises(PluginError, match=r"plugin 'clash'.*'person'.*'builtin'"):
        build_registry(bare(("clash", Clash())))


class FakeDist:
    def __init__(self, name, version):
        self.name, self.version = name, version


def fake_entry_points(*points):
    """Entry points ``(name, module)`` of yibao's own distribution, or ``(name, module,
    distribution, version)`` of another one."""
    eps = []
    for name, value, *dist in points:
        ep = metadata.EntryPoint(name, value, "yibao.plugins")
        eps.append(ep._for(FakeDist(*(dist or ("yibao", "0.1.0")))))
    return lambda group=None: [e for e in eps if e.group == group]


def test_allowlist_parameter_and_environment(monkeypatch):
    monkeypatch.setattr(metadata, "entry_points", fake_entry_points(
        ("family", "yibao.plugins.family"), ("tcm", "yibao.plugins.tcm")))
    monkeypatch.delenv("YIBAO_PLUGINS_ALLOW", raising=False)
    assert {n for n, *_ in plugin_info(make_plugin_manager())} == {"builtin", "family", "tcm"}
    pm = make_plugin_manager(allowlist=["tcm"])
    assert [n for n, *_ in plugin_info(pm)] == ["builtin", "tcm"]
    assert pm.skipped == [("family", "not on the allowlist (YIBAO_PLUGINS_ALLOW)")]
    monkeypatch.setenv("YIBAO_PLUGINS_ALLOW", "family")
    pm = make_plugin_manager()
    assert [n for n, *_ in plugin_info(pm)] == ["builtin", "family"]
    assert "family" not in build_registry(make_plugin_manager(allowlist="")).keys
    assert parse_allowlist(" a, b ,") == frozenset({"a", "b"}) and parse_allowlist(None) is None


def test_a_plugin_that_cannot_be_imported_is_named(monkeypatch):
    monkeypatch.setattr(metadata, "entry_points", fake_entry_points(
        ("ghost", "yibao_no_such_module_xyz", "yibao-ghost", "1.0")))
    with pytest.raises(PluginError, match=r"plugin 'ghost': cannot be imported"):
        make_plugin_manager(allowlist=None, declared=[("yibao-ghost", ">=1")])
    assert make_plugin_manager().skipped[0][0] == "ghost"  # undeclared: never imported


# -- only what the policy declares, identified by distribution ------------------------------

IMPOSTOR = ("family", "yibao_impostor_module_never_imported", "evil-family", "9.0")


def test_an_undeclared_package_is_never_imported_even_when_named_like_a_real_plugin(
        monkeypatch):
    monkeypatch.setattr(metadata, "entry_points", fake_entry_points(
        ("family", "yibao.plugins.family"), ("tcm", "yibao.plugins.tcm"), IMPOSTOR))
    monkeypatch.setenv("YIBAO_PLUGINS_ALLOW", "family,tcm")
    pm = make_plugin_manager()
    assert pm.distributions["family"] == ("yibao", "0.1.0")
    assert ("family", "distribution 'evil-family' is not declared by the policy "
                      '(plugin "evil-family" …)') in pm.skipped
    registry = build_registry(pm)
    assert registry.keys["family"].plugin == "family"
    assert registry.distributions["family"][0] == "yibao"


def test_a_declared_package_named_like_a_real_plugin_is_refused(monkeypatch):
    monkeypatch.setattr(metadata, "entry_points", fake_entry_points(
        ("family", "yibao.plugins.family"), IMPOSTOR))
    monkeypatch.delenv("YIBAO_PLUGINS_ALLOW", raising=False)
    with pytest.raises(PluginError, match=r"'evil-family' has the name of the plugin of "
                                          r"distribution 'yibao'"):
        make_plugin_manager(declared=[("evil-family", ">=1")])


def test_declared_versions_and_distributions_are_checked(monkeypatch):
    monkeypatch.setattr(metadata, "entry_points", fake_entry_points(
        ("ageband", "yibao.plugins.tcm", "yibao-ageband", "1.4.2")))
    monkeypatch.delenv("YIBAO_PLUGINS_ALLOW", raising=False)
    pm = make_plugin_manager(declared=[("Yibao_AgeBand", ">=1.4, <2")])  # PEP 503 names
    assert pm.distributions["ageband"] == ("yibao-ageband", "1.4.2")
    with pytest.raises(PluginError, match=r"version 1.4.2 is installed but the policy "
                                          r"declares '<1.4,>=1.0'"):
        make_plugin_manager(declared=[("yibao-ageband", ">=1.0, <1.4")])
    with pytest.raises(PluginError, match=r"plugin 'yibao-nothing': the policy declares it"):
        make_plugin_manager(declared=[("yibao-nothing", ">=1")])
    with pytest.raises(PluginError, match="does not allow it"):
        make_plugin_manager(allowlist="family", declared=[("yibao-ageband", ">=1")])
    assert "ageband" in make_plugin_manager(allowlist="yibao-ageband",
                                            declared=[("yibao-ageband", ">=1")]).distributions


class FloatUplift:
    __version__ = "2.0"

    @hookimpl
    def yibao_register_functions(self, registry):
        registry.add_function(FunctionDecl(
            "old_age_uplift", (Type(INT),), Type(RATIO), "uplift by age, as floats (wrong)",
            lambda age, *, n: np.where(np.asarray(age) >= 80, 0.05, 0.0)))


@pytest.mark.parametrize("engine", ["kernel", "reference"])
def test_a_function_returning_floats_for_a_ratio_is_an_error_naming_the_plugin(engine):
    from yibao.core.reference import settle as settle_reference
    registry = build_registry(bare(("uplift", FloatUplift())))
    plan = compile_policy_text("attribute age: int\nlayer basic {\n  base in_scope\n"
                               "  ratio 70% + old_age_uplift(age)\n}\n", registry)
    settle_on = settle if engine == "kernel" else settle_reference
    with pytest.raises(Exception, match=r"plugin 'uplift': function 'old_age_uplift' returned "
                                        r"float64 values for a ratio"):
        settle_on(plan, claims({"person_id": "p1", "total": 1_000, "age": 85}), registry)


def test_plugin_info_lists_versions_and_hooks():
    info = {n: (v, h) for n, v, h in plugin_info(bare(("everything", Everything())))}
    assert info["everything"] == ("9.9", tuple(sorted(hookspecs.HOOKS)))


def test_yibao_plugins_command(capsys):
    from types import SimpleNamespace
    from yibao.dsl.commands import plugins as command
    assert command.run(SimpleNamespace(allow="tcm")) == 0
    out = capsys.readouterr().out
    assert re.search(r"^tcm \S+\n  hooks: .*yibao_register_functions", out, re.M)
    assert "function tcm_share" in out and "family (not loaded: not on the allowlist" in out


def test_plugin_declarations_print_parse_and_compile():
    """``plugin "dist" "range"``: printed as written, and accepted by the compiler when the
    registry holds the distribution at a version in the range (E702 otherwise)."""
    from yibao.dsl.compiler import check_text
    from yibao.dsl.parser import parse
    from yibao.dsl.passes.check_plugins import declared_plugins
    from yibao.dsl.printer import format_policy
    from plugin_helpers import HEADER
    text = HEADER + 'plugin "Yibao_AgeBand" ">=1.2, <2"\nlayer basic {\n  base in_scope\n' \
                    '  ratio 50%\n}\n'
    printed = format_policy(parse(text, "t.yb"))
    assert 'plugin "Yibao_AgeBand" ">=1.2, <2"' in printed.splitlines()
    assert declared_plugins(parse(printed, "t.yb")) == (("Yibao_AgeBand", ">=1.2, <2"),)
    registry = build_registry(bare())
    for version, codes in (("1.3.0", []), ("2.0", ["E702"]), (None, ["E702"])):
        registry.distributions.pop("ageband", None)
        if version:
            registry.distributions["ageband"] = ("yibao-ageband", version)
        plan, diags = check_text(text, "t.yb", registry=registry)
        assert [d.code for d in diags] == codes and (plan is None) == bool(codes)
