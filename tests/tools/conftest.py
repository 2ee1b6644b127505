"""Shared helpers for the policy-author tools' tests."""
from __future__ import annotations

from pathlib import Path

import pytest

from yibao.dsl.compiler import compile_policy

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "city_configs"


@pytest.fixture(scope="session")
def reference_plan():
    return compile_policy(CONFIGS / "reference")
