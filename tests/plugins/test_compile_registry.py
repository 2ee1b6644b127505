"""The registry a command that only compiles builds (`yibao check`: ``settles=False``) has
every declaration the compiler reads and compiles every bundled city to the same plans as the
full registry; it leaves out the validators and stages only a run reads. Distribution names
compare as packaging compares them."""
from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from packaging.utils import canonicalize_name

from yibao.core.registry import canonical_distribution
from yibao.dsl.plugin_registry import registry_for
from yibao.dsl.versions import compile_versions

CONFIGS = Path(__file__).resolve().parents[2] / "city_configs"
CITIES = sorted(p.name for p in CONFIGS.iterdir() if list(p.glob("*.yb")))


@pytest.mark.parametrize("city", CITIES)
def test_the_compile_registry_compiles_as_the_full_one(city):
    full, compiling = registry_for(CONFIGS / city), registry_for(CONFIGS / city, settles=False)
    for part in ("functions", "keys", "groupers", "adjustments", "distributions"):
        assert getattr(compiling, part).keys() == getattr(full, part).keys(), part
    assert full.stages and full.validators  # family's stage, family's and tcm's checks
    assert compiling.stages == [] and compiling.validators == []
    assert compile_versions(CONFIGS / city, compiling).to_json() == \
        compile_versions(CONFIGS / city, full).to_json()


@given(st.text(alphabet="aZ09-_.", min_size=1, max_size=12))
def test_distribution_names_compare_as_packaging_compares_them(name):
    assert canonical_distribution(name) == canonicalize_name(name)
