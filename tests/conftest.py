"""Shared fixtures: where the shared data lives, the golden batch, a hand-built reference plan."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))  # tests/policy_texts.py, shared text


def shared_dir() -> Path:
    """../shared beside the repo (CI puts a copy of shared/ beside the clone). Missing, it
    fails the test that needs it, never skips it: a suite that passes without the golden
    batches and the CHS-DRG tables has not checked them."""
    for candidate in (REPO.parent / "shared", REPO / "shared"):
        if candidate.is_dir():
            return candidate
    pytest.fail("../shared (golden batches, CHS-DRG tables) is not beside this checkout: "
                "put a copy of shared/ beside the clone (or in it)", pytrace=False)


@pytest.fixture(scope="session")
def shared() -> Path:
    return shared_dir()


@pytest.fixture(scope="session")
def golden(shared):
    import pyarrow.parquet as pq
    claims = pq.read_table(shared / "golden" / "reference_claims.parquet")
    expected = pq.read_table(shared / "golden" / "reference_expected.parquet")
    return claims, expected


def pytest_configure(config):
    """The compiled-policy cache (dsl/policy_cache.py) of this session, and of the commands
    it runs in subprocesses, in a fresh temporary folder: never the real ~/.cache/yibao."""
    import atexit
    import os
    import shutil
    import tempfile
    folder = tempfile.mkdtemp(prefix="yibao-test-cache-")
    os.environ["YIBAO_CACHE_DIR"] = folder
    atexit.register(shutil.rmtree, folder, ignore_errors=True)


def pytest_addoption(parser):
    parser.addoption("--update-goldens", action="store_true", default=False,
                     help="rewrite golden text files from the current output")
