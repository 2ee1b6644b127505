"""E413: a layer pays between 0% and 100% of its base. A bare number in a ratio place is a
fraction (85 means 8500%), so a ratio constant, band rate or value of a table used as a layer's
ratio outside 0..100% is an error; ratios elsewhere (a pool's uplift factor) may exceed 100%."""
from pathlib import Path

import pytest

from yibao.dsl.compiler import check_text, compile_policy, compile_text
from yibao.plugins.manager import build_registry, make_plugin_manager
from yibao.dsl.errors import PolicyError

# yibao's own plugins: rizhao applies the tcm plugin's tcm_tilt (`adjust by tcm_tilt`)
SHIPPED = build_registry(make_plugin_manager(allowlist="family,tcm"))

HEAD = 'policy "t" {\n  region "test"\n  effective 2024-01-01 to 2024-12-31\n}\n'
CITIES = Path(__file__).resolve().parents[2] / "city_configs"


def diags(body, base_dir=None):
    _, found = check_text(HEAD + body, "t.yb", base_dir=base_dir)
    return [(d.code, d.hint) for d in found]


@pytest.mark.parametrize("ratio", ["0", "1", "0.85", "0%", "85%", "100%", "12.5%"])
def test_ratios_in_range_compile(ratio):
    plan = compile_text(HEAD + f"layer a {{\n  base in_scope\n  ratio {ratio}\n}}\n", "t.yb")
    assert plan.layers[0].name == "a"


@pytest.mark.parametrize("ratio,hint", [
    ("85", "did you mean 85%?"), ("100", "did you mean 100%?"), ("1.5", "did you mean 1.5%?"),
    ("101%", None), ("-50%", None), ("101", None), ("-1", None),
    ("if low_income then 90% else 90", "did you mean 90%?"),
    ("min(90%, 300)", None),
])
def test_ratios_out_of_range_are_e413(ratio, hint):
    found = diags(f"layer a {{\n  base in_scope\n  ratio {ratio}\n}}\n")
    assert [c for c, _ in found] == ["E413"]
    if hint:
        assert found[0][1] == hint
    else:
        assert "did you mean" not in found[0][1]


def test_table_used_as_ratio_checked_once_and_other_tables_not():
    body = ("table r (hospital_level) -> ratio { 1: 90, 2: 80%, 3: 70% }\n"
            "table uplift (hospital_level) -> ratio { 1: 120%, 2: 110%, 3: 100% }\n"
            "layer a {\n  base in_scope\n  ratio r[hospital_level]\n}\n"
            "layer b {\n  base in_scope - paid(a)\n  ratio r[hospital_level]\n}\n")
    assert diags(body) == [("E413", "did you mean 90%?")]


def test_csv_table_value_reported_at_its_line(tmp_path):
    (tmp_path / "r.csv").write_text("hospital_level,value\n1,70%\n2,250%\n3,50%\n",
                                    encoding="utf-8")
    body = ('table r (hospital_level) -> ratio from "r.csv"\n'
            "layer a {\n  base in_scope\n  ratio r[hospital_level]\n}\n")
    with pytest.raises(PolicyError) as info:
        compile_text(HEAD + body, "t.yb", base_dir=tmp_path)
    assert info.value.codes == ["E413"]
    assert "r.csv line 3" in str(info.value)


def test_band_rate_out_of_range():
    body = ("layer a {\n  base in_scope\n  bands per person per year {\n"
            "    0 to 10000: 50\n    10000 and above: 95%\n  }\n}\n")
    assert diags(body) == [("E413", "did you mean 50%?")]


@pytest.mark.parametrize("city", ["jinhua", "rizhao", "shanghai"])
def test_pool_uplift_above_100_percent_stays_legal(city):
    assert compile_policy(CITIES / city, SHIPPED) is not None
