"""The policy-author commands end to end: `yibao test`, `yibao fmt`, `yibao explain`."""
from __future__ import annotations

import json
import shutil

import pyarrow.parquet as pq
import pytest

from yibao.core.policytest import claims_table, load_cases
from yibao.dsl.cli import main
from yibao.dsl.compiler import compile_policy
from yibao.plugins.manager import build_registry, make_plugin_manager
from yibao.dsl.parser import parse
from yibao.dsl.printer import format_policy

from .conftest import CONFIGS

# yibao's own plugins: rizhao applies the tcm plugin's tcm_tilt (`adjust by tcm_tilt`)
SHIPPED = build_registry(make_plugin_manager(allowlist="family,tcm"))

CITIES = sorted(p.parent.name for p in CONFIGS.glob("*/policy.yb"))


@pytest.mark.parametrize("city", CITIES)
def test_every_city_ships_passing_tests(city, capsys):
    assert (CONFIGS / city / "tests.yaml").is_file(), f"{city} has no tests.yaml"
    assert main(["test", str(CONFIGS / city)]) == 0
    out = capsys.readouterr().out
    assert "FAIL" not in out and "0 failed" in out and "coverage" in out


def test_failing_case_names_the_layer_and_exits_1(tmp_path, capsys):
    shutil.copy(CONFIGS / "reference" / "policy.yb", tmp_path / "policy.yb")
    text = (CONFIGS / "reference" / "tests.yaml").read_text(encoding="utf-8")
    (tmp_path / "tests.yaml").write_text(text.replace("critical: 21486", "critical: 21487"),
                                         encoding="utf-8")
    assert main(["test", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "FAIL A1, A2" in out
    assert "A2 critical [layer critical 大病保险]: expected 21,487.00, got 21,486.00" in out
    assert "3 passed, 1 failed" in out


def test_coverage_lists_what_no_case_reached(tmp_path, capsys):
    """Only the outpatient case: the inpatient layer, its rows and the 70% band are unreached."""
    import yaml
    cases = yaml.safe_load((CONFIGS / "reference" / "tests.yaml").read_text(encoding="utf-8"))
    shutil.copy(CONFIGS / "reference" / "policy.yb", tmp_path / "policy.yb")
    (tmp_path / "tests.yaml").write_text(yaml.safe_dump([cases[2]], allow_unicode=True),
                                         encoding="utf-8")
    assert main(["test", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "layer basic_inpatient never applied" in out
    assert "layer assistance never applied" in out
    assert "table inpatient_ratio row [tier2, 3] never matched" in out
    assert "table basic_outpatient.ratio row [1] never matched" not in out
    assert "layer critical band 100,000.00 and above: 70% never entered" in out


def test_reference_cases_are_the_spec_examples():
    cases = load_cases(CONFIGS / "reference")
    ids = {cid for c in cases for cid, _, _ in c.expect}
    assert ids == {"A1", "A2", "B1", "O1", "O2", "O3", "S1", "S2"}


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*/*.yb")), ids=lambda p: p.parent.name)
def test_fmt_is_idempotent_and_keeps_the_plan(path, tmp_path, capsys):
    folder = tmp_path / path.parent.name
    shutil.copytree(path.parent, folder)
    target = folder / path.name
    assert main(["fmt", str(target)]) == 0
    once = target.read_text(encoding="utf-8")
    assert main(["fmt", "--check", str(target)]) == 0
    assert target.read_text(encoding="utf-8") == once == format_policy(parse(once, "x"))
    assert _same(compile_policy(target, SHIPPED), compile_policy(path, SHIPPED))


def _same(a, b) -> bool:
    import dataclasses
    strip = lambda p: [dataclasses.replace(l, source="") for l in p.layers]  # noqa: E731
    rows = lambda p: [(t.name, t.rows) for t in p.tables]  # noqa: E731
    return strip(a) == strip(b) and rows(a) == rows(b)


def test_fmt_check_reports_and_changes_nothing(tmp_path, capsys):
    messy = tmp_path / "policy.yb"
    text = (CONFIGS / "reference" / "policy.yb").read_text(encoding="utf-8")
    messy.write_text(text.replace("  base in_scope - self_first", "  base   in_scope-self_first"),
                     encoding="utf-8")
    before = messy.read_text(encoding="utf-8")
    assert main(["fmt", "--check", str(tmp_path)]) == 1
    assert messy.read_text(encoding="utf-8") == before
    assert "would reformat" in capsys.readouterr().out


def test_explain_command_text_and_json(tmp_path, capsys, reference_plan):
    rows = [dict(claim_id="A1", person_id="p1", discharge_date="2024-03-01", hospital_level=3,
                 total=50_000, in_scope=45_000, self_first=2_000)]
    pq.write_table(claims_table(rows, reference_plan), tmp_path / "c.parquet")
    args = ["explain", str(CONFIGS / "reference"),
            str(tmp_path / "c.parquet"), "--claim-id", "A1"]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "42,200.00 × 85% = 35,870 → 35,870.00" in text
    assert main([*args, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["self_pay"] == 1_413_000
    assert main([*args[:-1], "nope"]) == 2
