"""The command line behaves as linters and test runners do (docs/cli.md): bundled cities by
name, exit codes 0/1/2, --strict, --format json, JUnit XML, a subcommand's own usage on a
usage error, `init`, `fmt --diff`, and tables that never cut a number."""
from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from xml.etree import ElementTree as ET

import pyarrow.parquet as pq
import pytest

from yibao.core.generate import generate_claims
from yibao.dsl.cli import main

from .conftest import CONFIGS
from .narrow_report import big_report

NEVER_APPLIES = '''
layer never "从不适用" {
  applies when setting = outpatient and setting = inpatient
  base in_scope
}
'''


@pytest.fixture
def warned(tmp_path):
    """The reference policy and its cases, plus a layer that draws warning W407."""
    folder = tmp_path / "warned"
    folder.mkdir()
    text = (CONFIGS / "reference" / "policy.yb").read_text(encoding="utf-8")
    (folder / "policy.yb").write_text(text + NEVER_APPLIES, encoding="utf-8")
    shutil.copy(CONFIGS / "reference" / "tests.yaml", folder / "tests.yaml")
    return folder


@pytest.fixture
def broken(tmp_path):
    folder = tmp_path / "broken"
    folder.mkdir()
    text = (CONFIGS / "reference" / "policy.yb").read_text(encoding="utf-8")
    (folder / "policy.yb").write_text(text.replace("[tier, hospital_level]",
                                                   "[tier, hospital_levle]"), encoding="utf-8")
    return folder


# -- a bundled city by name ------------------------------------------------------------------

@pytest.mark.parametrize("argv", [["check", "rizhao"], ["plan", "rizhao"], ["test", "rizhao"]])
def test_a_bundled_city_by_name(argv, capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # no folder called rizhao here
    assert main(argv) == 0
    assert capsys.readouterr().out


def test_settle_explain_and_diff_take_a_city_name(capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    pq.write_table(generate_claims(200, seed=3), tmp_path / "c.parquet")
    assert main(["settle", "reference", "c.parquet", "--out", "out",
                 "--no-progress"]) in (0, 1)
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["policy"]["files"]  # hashed from the bundled folder
    claim = pq.read_table(tmp_path / "c.parquet").column("claim_id")[0].as_py()
    assert main(["explain", "reference", "c.parquet",
                 "--claim-id", claim]) == 0
    assert main(["diff", "reference", "jinhua", "c.parquet"]) == 0


def test_a_path_that_exists_wins_over_a_city_name(capsys, monkeypatch, tmp_path, broken):
    monkeypatch.chdir(broken.parent)
    shutil.copytree(broken, tmp_path / "rizhao")
    assert main(["check", "rizhao"]) == 1  # the local (broken) folder, not the bundled city


def test_an_unknown_name_lists_the_bundled_cities(capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    assert main(["check", "rizhaoo"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("yibao check: error: no policy at rizhaoo") and len(err.splitlines()) == 1
    assert "rizhao" in err and "jinhua" in err
    assert main(["test", "nowhere"]) == 2
    assert "bundled: " in capsys.readouterr().err


# -- exit codes, --strict, --format json, JUnit XML ------------------------------------------

def test_check_exit_codes(capsys, warned, broken, tmp_path):
    assert main(["check", str(CONFIGS / "reference")]) == 0
    assert main(["check", str(broken)]) == 1  # findings
    assert "E201" in capsys.readouterr().err
    assert main(["check", str(tmp_path / "missing")]) == 2  # could not run
    assert main(["check", str(warned)]) == 0  # a warning alone is no finding ...
    assert main(["check", "--strict", str(warned)]) == 1  # ... unless --strict
    assert "W407" in capsys.readouterr().err


def test_check_json(capsys, warned, broken):
    assert main(["check", "--format", "json", "--strict", str(warned)]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] is False and doc["findings"] == 1 and doc["warnings"] == 1
    (diag,) = doc["files"][0]["diagnostics"]
    assert diag["code"] == "W407" and diag["severity"] == "warning"
    assert diag["file"].endswith("policy.yb") and diag["line"] > 0 and diag["column"] > 0
    assert main(["check", "--format", "json", str(broken)]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["errors"] >= 1 and doc["files"][0]["diagnostics"][0]["code"] == "E201"
    assert doc["files"][0]["diagnostics"][0]["help"]


def test_test_strict_json_and_junit(capsys, warned, tmp_path):
    assert main(["test", str(warned)]) == 0
    assert main(["test", "--strict", str(warned)]) == 1
    capsys.readouterr()
    junit = tmp_path / "junit.xml"
    assert main(["test", "--format", "json", "--junit-xml", str(junit), str(warned)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] and doc["failed"] == 0 and doc["passed"] == 4
    assert [c["name"] for c in doc["cases"]][0].startswith("A1, A2")
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite.get("tests") == "4" and suite.get("failures") == "0"


def test_junit_names_the_failed_case(capsys, tmp_path):
    folder = tmp_path / "ref"
    shutil.copytree(CONFIGS / "reference", folder)
    cases = folder / "tests.yaml"
    cases.write_text(cases.read_text(encoding="utf-8").replace("critical: 21486",
                                                               "critical: 21487"),
                     encoding="utf-8")
    junit = tmp_path / "junit.xml"
    assert main(["test", "--junit-xml", str(junit), "--format", "json", str(folder)]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["failed"] == 1 and not doc["ok"]
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite.get("failures") == "1"
    failure = [c for c in suite.iter("testcase") if c.find("failure") is not None]
    assert len(failure) == 1 and failure[0].get("name").startswith("A1, A2")
    assert "expected 21,487.00, got 21,486.00" in failure[0].find("failure").text


@pytest.mark.parametrize("argv, usage", [
    (["check", "x", "--nope"], "usage: yibao check"),
    (["test", "x", "--nope"], "usage: yibao test"),
    (["fmt", "--wat", "x"], "usage: yibao fmt"),
    (["check"], "usage: yibao check"),
])
def test_a_usage_error_shows_the_subcommands_usage(argv, usage, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(usage), err


# -- init and fmt --diff ---------------------------------------------------------------------

def test_init_makes_a_folder_that_checks_and_tests(capsys, tmp_path):
    folder = tmp_path / "wuxi"
    assert main(["init", str(folder), "--year", "2025"]) == 0
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "policy.yb", "tests.yaml"]
    assert "ASSUMED" in (folder / "README.md").read_text(encoding="utf-8")
    assert main(["check", "--strict", str(folder)]) == 0
    assert main(["test", "--strict", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "1 passed, 0 failed" in out and "every layer, table row and band exercised" in out
    assert main(["fmt", "--check", str(folder)]) == 0  # written in canonical layout


def test_init_never_overwrites(capsys, tmp_path):
    folder = tmp_path / "wuxi"
    folder.mkdir()
    (folder / "policy.yb").write_text("mine", encoding="utf-8")
    assert main(["init", str(folder)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert (folder / "policy.yb").read_text(encoding="utf-8") == "mine"


def test_fmt_diff_prints_a_unified_diff_and_changes_nothing(capsys, tmp_path):
    messy = tmp_path / "policy.yb"
    text = (CONFIGS / "reference" / "policy.yb").read_text(encoding="utf-8")
    messy.write_text(text.replace("  base in_scope - self_first",
                                  "  base   in_scope-self_first", 1), encoding="utf-8")
    before = messy.read_text(encoding="utf-8")
    assert main(["fmt", "--diff", str(messy)]) == 1
    out = capsys.readouterr().out
    assert f"--- {messy} (current)" in out and f"+++ {messy} (formatted)" in out
    assert "-  base   in_scope-self_first" in out and "+  base in_scope - self_first" in out
    assert messy.read_text(encoding="utf-8") == before
    assert main(["fmt", "--diff", str(CONFIGS / "reference" / "policy.yb")]) == 0
    assert "---" not in capsys.readouterr().out


# -- numbers are never cut -------------------------------------------------------------------

AMOUNTS = ("3,851,727,812.34", "3,851,727,935.79", "1,283,909,270.78", "1,234,567.89",
           "basic_inpati", "1,000,000")


def test_an_80_column_terminal_cuts_no_number():
    from rich.console import Console
    from yibao.dsl.commands.diff import print_report
    buf = io.StringIO()
    print_report(big_report(), Console(file=buf, width=80, highlight=False))
    text = buf.getvalue()
    assert "…" not in text
    for amount in AMOUNTS:
        assert amount in text, amount


def test_piped_output_at_columns_80_cuts_no_number():
    script = ("import sys; sys.path.insert(0, %r)\n"
              "from narrow_report import big_report\n"
              "from yibao.dsl.commands._common import console\n"
              "from yibao.dsl.commands.diff import print_report\n"
              "print_report(big_report(), console())\n") % os.path.dirname(__file__)
    env = {**os.environ, "COLUMNS": "80"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=env, timeout=120, check=True)
    assert "…" not in done.stdout
    for amount in AMOUNTS:
        assert amount in done.stdout, amount
    assert "basic_inpatient" in done.stdout and "城乡居民大病保险二次补偿" in done.stdout
