"""tests.yaml as docs/testing.md states it: failures name the case's file and line, a misspelt
claim field or expected column gets a did-you-mean, a YAML syntax error is one line with its
line number, -k selects cases, and --min-coverage fails a run whose cases exercise too little
of the policy."""
from __future__ import annotations

import json
import shutil
from xml.etree import ElementTree as ET

import pytest

from yibao.core.policytest import CaseFileError, load_cases, select_cases
from yibao.dsl.cli import main

from .conftest import CONFIGS


@pytest.fixture
def city(tmp_path):
    """A copy of the reference city (4 cases, all passing)."""
    shutil.copytree(CONFIGS / "reference", tmp_path / "city")
    return tmp_path / "city"


def edit(city, old, new):
    path = city / "tests.yaml"
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def test_cases_know_their_file_and_line(city):
    cases = load_cases(city)
    assert [c.where for c in cases] == [f"{city / 'tests.yaml'}:{n}" for n in (3, 20, 32, 50)]


def test_a_failing_case_names_its_file_and_line(city, capsys):
    edit(city, "B1: {basic_inpatient: 300000", "B1: {basic_inpatient: 300001")
    assert main(["test", str(city)]) == 1
    out = capsys.readouterr().out
    assert f"FAIL B1 — low-income, every cap binds, assistance holds self-pay to 50,000 " \
           f"({city / 'tests.yaml'}:20)" in " ".join(out.split())


def test_misspelt_claim_field_did_you_mean_with_its_line(city, capsys):
    edit(city, "hospital_level: 3, discharge_date: 2024-02-10", "hospital_levle: 3, "
         "discharge_date: 2024-02-10")
    assert main(["test", str(city)]) == 1
    out = " ".join(capsys.readouterr().out.split())
    assert "claim field 'hospital_levle' is not a claim column; did you mean " \
           "'hospital_level'?" in out
    assert "tests.yaml:23:" in out  # the line the misspelt field is on


def test_misspelt_expected_column_did_you_mean(city, capsys):
    edit(city, "B1: {basic_inpatient: 300000, basic_inpatient_deductible: 0, critical: 500000",
         "B1: {basic_inpatient: 300000, basic_inpatient_deductible: 0, critcal: 500000")
    assert main(["test", str(city), "--format", "json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    [failed] = [c for c in doc["cases"] if not c["passed"]]
    assert failed["where"].endswith("tests.yaml:20")
    [line] = failed["failures"]
    assert "no column 'critcal' in the results; did you mean 'critical'?" in line
    assert "tests.yaml:29:" in line


def test_yaml_syntax_error_is_one_line_with_the_line_number(city, capsys):
    edit(city, "  expect:\n    B1: {", "  expect:\n    B1: {{")
    assert main(["test", str(city)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert f"{city / 'tests.yaml'}:" in err and "YAML syntax error" in err
    line = int(err.split("tests.yaml:")[1].split(":")[0])
    assert 29 <= line <= 33  # at the broken mapping or where the parser noticed it


def test_k_selects_cases(city, capsys):
    assert main(["test", str(city), "-k", "B1 or O1"]) == 0
    assert "2 passed, 0 failed" in capsys.readouterr().out
    assert main(["test", str(city), "-k", "not outpatient"]) == 0
    out = capsys.readouterr().out
    assert "3 passed, 0 failed" in out and "O1" not in out.split("coverage")[0]


def test_select_cases_expressions():
    cases = load_cases(CONFIGS / "reference")
    names = lambda expr: [c.name[:2] for c in select_cases(cases, expr)]
    assert names("a1") == ["A1"]
    assert names("(O1 or S1) and not tier1") == ["O1"]
    assert names("") == ["A1", "B1", "O1", "S1"]
    with pytest.raises(CaseFileError, match="-k"):
        select_cases(cases, "A1 and or")


def test_min_coverage_fails_the_run_below_it(city, capsys):
    assert main(["test", str(city), "--min-coverage", "50"]) == 0
    out = capsys.readouterr().out
    assert "coverage 52.3% of layers, table rows and bands (--min-coverage 50%)" in out
    assert main(["test", str(city), "--min-coverage", "60"]) == 1
    assert "coverage 52.3% is below --min-coverage 60%" in capsys.readouterr().err
    assert main(["test", str(city), "--min-coverage", "60", "--format", "json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] is False and doc["failed"] == 0 and 52 < doc["coverage_percent"] < 53


def test_coverage_follows_the_selected_cases(city, capsys):
    assert main(["test", str(city), "-k", "B1", "--min-coverage", "50"]) == 1
    assert "is below --min-coverage 50%" in capsys.readouterr().err


def test_junit_testcases_carry_file_and_line(city, tmp_path, capsys):
    report = tmp_path / "junit.xml"
    assert main(["test", str(city), "--junit-xml", str(report)]) == 0
    cases = ET.parse(report).getroot().iter("testcase")
    assert [(c.get("file"), c.get("line")) for c in cases] == [
        (str(city / "tests.yaml"), str(n)) for n in (3, 20, 32, 50)]
