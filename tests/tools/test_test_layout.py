"""The test suite mirrors the stages (docs/architecture.md, "The tests mirror the stages"):
every folder holding tests is named in that table, every folder the table names exists and
holds tests, and no test file sits loose at the top of tests/."""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TESTS = ROOT / "tests"
DOC = ROOT / "docs" / "architecture.md"


def table_folders() -> set[str]:
    """The folders named in the stage table of the architecture document."""
    text = DOC.read_text(encoding="utf-8")
    section = text.split("## The tests mirror the stages", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ")][1:]  # after the header
    return {name for row in rows for name in re.findall(r"`tests/(\w+)`", row.split("|")[2])}


def folders_with_tests() -> set[str]:
    return {p.parent.relative_to(TESTS).parts[0] for p in TESTS.rglob("test_*.py")
            if p.parent != TESTS}


def test_no_test_file_sits_at_the_top_of_tests():
    loose = sorted(p.name for p in TESTS.glob("test_*.py"))
    assert not loose, f"put these in the folder of their stage: {loose}"


def test_every_folder_of_tests_is_a_stage_in_the_doc():
    missing = folders_with_tests() - table_folders()
    assert not missing, f"docs/architecture.md's test table does not name {sorted(missing)}"


def test_every_folder_the_doc_names_holds_tests():
    empty = table_folders() - folders_with_tests()
    assert not empty, f"docs/architecture.md names test folders with no tests: {sorted(empty)}"
