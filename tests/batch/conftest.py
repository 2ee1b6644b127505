"""Shared fixtures for the batch runner tests: two policies (person keys only; a family cap)
and small generated claim files."""
from __future__ import annotations

from pathlib import Path

import pytest

from yibao.core.generate import generate_claims, write_claims
from yibao.dsl.commands._common import registry as full_registry
from yibao.dsl.compiler import compile_policy

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT / "city_configs" / "reference"


@pytest.fixture(scope="session")
def registry():
    return full_registry()


@pytest.fixture(scope="session")
def plan(registry):
    return compile_policy(REFERENCE, registry=registry)


@pytest.fixture(scope="session")
def family_plan(registry, tmp_path_factory):
    """The reference policy with its outpatient deductible and cap per family, small enough
    that they bind: partitions by family, and splitting a family changes the numbers."""
    text = (REFERENCE / "policy.yb").read_text(encoding="utf-8")
    changed = text.replace("cap 5_000 yuan per person per year", "cap 150 yuan per family per year")
    changed = changed.replace("deductible 1_000 yuan per person per year",
                              "deductible 200 yuan per family per year")
    assert changed.count("per family") == 2
    folder = tmp_path_factory.mktemp("family_policy")
    (folder / "policy.yb").write_text(changed, encoding="utf-8")
    return compile_policy(folder, registry=registry)


@pytest.fixture(scope="session")
def claims():
    return generate_claims(6_000, seed=11)


@pytest.fixture(scope="session")
def claims_file(claims, tmp_path_factory):
    path = tmp_path_factory.mktemp("claims") / "claims.parquet"
    write_claims(claims, path, row_group_size=1_000)
    return path
