"""Shared fixtures for the policy-language tests.

``--update-goldens`` (declared in tests/conftest.py) rewrites tests/dsl/golden/* and
tests/dsl/errors/*.err from the current output instead of comparing (review the diff before
committing); YIBAO_UPDATE_GOLDENS=1 does the same.
"""
import os
from pathlib import Path

import pytest

HERE = Path(__file__).parent
REPO = HERE.parent.parent


@pytest.fixture
def update_goldens(request) -> bool:
    try:
        flag = request.config.getoption("--update-goldens")
    except ValueError:
        flag = False
    return bool(flag) or os.environ.get("YIBAO_UPDATE_GOLDENS") == "1"


@pytest.fixture
def golden_text(update_goldens):
    """golden(path, text): compare ``text`` with the file, or write it when updating."""
    def check(path: Path, text: str) -> None:
        if update_goldens or not path.exists():
            path.write_text(text, encoding="utf-8")
            if not update_goldens:
                pytest.fail(f"golden {path.name} was missing and has been written; re-run")
            return
        assert text == path.read_text(encoding="utf-8"), f"differs from golden {path.name}"
    return check
