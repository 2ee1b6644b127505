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


@pytest.fixture(scope="session")
def jinhua_settled():
    """Jinhua's plan, 2,000 generated claims and the kernel's per-claim results (as dicts):
    the explain-the-provider-part tests compare explain against these."""
    from yibao.core.engine import settle
    from yibao.core.generate import generate_claims
    plan = compile_policy(CONFIGS / "jinhua")
    claims = generate_claims(2_000)
    return plan, claims, settle(plan, claims).results.to_pylist()
