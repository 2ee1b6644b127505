"""Shared helpers for the policy-author tools' tests."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from yibao.dsl.compiler import compile_policy

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "city_configs"


def program_line(program: str, prefix: str, unset: str, **env) -> list:
    """The words after ``prefix`` on the line a fresh ``python -c program`` prints (given the
    reference city's folder as its argument), run from the repository with ``unset`` taken
    out of the environment and ``env`` added: the start-up tests' fresh `yibao` process."""
    environ = {k: v for k, v in os.environ.items() if k != unset}
    done = subprocess.run([sys.executable, "-c", program, str(CONFIGS / "reference")],
                          cwd=REPO, env={**environ, **env}, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    line = next(x for x in done.stdout.splitlines() if x.startswith(prefix + " "))
    return line.split()[1:]


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
