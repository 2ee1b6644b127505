"""The provider passes, each printed: ``trace_passes`` of two cities with provider payment
compared with a golden print per city (``--update-goldens`` rewrites them), so a change in
what ``resolve_provider``, ``read_provider_tables``, ``check_provider_conditions``,
``check_groupers`` or ``check_pools`` records is a one-line diff.

Jinhua: a CHS-DRG grouper with a split, two decision tables, capitation, three pools.
Rizhao: per-hospital budgets, fixed point values, an alliance, a plugin adjustment.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from yibao.dsl.compiler import PASSES, trace_passes
from yibao.dsl.plugin_registry import registry_for

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).parent / "golden"
PROVIDER_PASSES = ("resolve_provider", "read_provider_tables", "check_provider_conditions",
                   "check_groupers", "check_pools")


def printed(city: str) -> str:
    path = ROOT / "city_configs" / city / "policy.yb"
    stages = trace_passes(path.read_text(encoding="utf-8"), f"city_configs/{city}/policy.yb",
                          path.parent, registry_for(path))
    return "".join(f"== after {name}\n{text}\n" for name, text in stages)


def test_the_provider_passes_run_in_order():
    names = [name for name, _ in PASSES]
    at = [names.index(n) for n in PROVIDER_PASSES]
    assert at == sorted(at) and at[-1] - at[0] == len(PROVIDER_PASSES) - 1
    assert names.index("check_layers") < at[0] and at[-1] < names.index("apply_adjustments")


@pytest.mark.parametrize("city", ["jinhua", "rizhao"])
def test_each_pass_prints_as_its_golden(city, golden_text):
    text = printed(city)
    for name in PROVIDER_PASSES:
        section = text.split(f"== after {name}\n")[1].split("== after ")[0]
        assert section.strip() and "checks only" not in section, f"{name} recorded nothing"
    golden_text(GOLDEN / f"{city}.passes.txt", text)
