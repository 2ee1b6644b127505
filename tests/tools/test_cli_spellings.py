"""One spelling for each noun (docs/cli.md, "One spelling for each noun"): the policy and the
claims are positional operands on settle, explain, diff and calibrate; a count is -n/--count;
--out names a folder. The previous release's flags still work, with a deprecation note on
stderr, and give the same result as the new spelling."""
from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from yibao.core.generate import generate_claims
from yibao.dsl.cli import main

DEPRECATED = "deprecated:"


@pytest.fixture
def here(tmp_path, monkeypatch):
    """A working directory holding c.parquet, 200 generated claims of 2024."""
    monkeypatch.chdir(tmp_path)
    pq.write_table(generate_claims(200, seed=3), tmp_path / "c.parquet")
    return tmp_path


def first_claim(here) -> str:
    return pq.read_table(here / "c.parquet").column("claim_id")[0].as_py()


# -- settle ----------------------------------------------------------------------------------

def test_settle_takes_policy_then_claims(here, capsys):
    assert main(["settle", "reference", "c.parquet", "--out", "new", "--no-progress"]) in (0, 1)
    assert DEPRECATED not in capsys.readouterr().err
    assert main(["settle", "--policy", "reference", "c.parquet", "--out", "old",
                 "--no-progress"]) in (0, 1)
    err = capsys.readouterr().err
    assert "yibao settle: deprecated: --policy POLICY" in err and "first operand" in err
    assert pq.read_table(here / "new" / "claims.parquet").equals(
        pq.read_table(here / "old" / "claims.parquet"))


def test_settle_takes_several_claim_operands(here, capsys):
    pq.write_table(generate_claims(50, seed=4), here / "d.parquet")
    assert main(["settle", "reference", "c.parquet", "d.parquet", "--out", "two",
                 "--no-progress"]) in (0, 1)
    data = json.loads((here / "two" / "summary.json").read_text(encoding="utf-8"))
    assert "250" in json.dumps(data)  # 200 + 50 input rows


def test_operands_may_follow_options(here, capsys):
    assert main(["settle", "reference", "--out", "late", "--no-progress", "c.parquet"]) in (0, 1)
    assert (here / "late" / "current" / "claims.parquet").exists()
    with pytest.raises(SystemExit):  # an unknown option is still a usage error
        main(["settle", "reference", "c.parquet", "--out", "x", "--bogus"])


def test_settle_without_claims_is_a_usage_error_of_settle(here, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["settle", "reference", "--out", "x"])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: yibao settle POLICY CLAIMS")
    assert "got 1 policy and 0 claims operand(s)" in err


# -- explain ---------------------------------------------------------------------------------

def test_explain_takes_policy_then_claims(here, capsys):
    claim = first_claim(here)
    assert main(["explain", "reference", "c.parquet", "--claim-id", claim, "--json"]) == 0
    new = capsys.readouterr()
    assert DEPRECATED not in new.err
    assert main(["explain", "--policy", "reference", "--claims", "c.parquet",
                 "--claim-id", claim, "--json"]) == 0
    old = capsys.readouterr()
    assert "--policy POLICY" in old.err and "--claims FILE" in old.err
    assert json.loads(new.out) == json.loads(old.out)


def test_explain_refuses_two_claim_files(here, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["explain", "reference", "c.parquet", "c.parquet", "--claim-id", "x"])
    assert stop.value.code == 2
    assert "usage: yibao explain POLICY CLAIMS" in capsys.readouterr().err


# -- diff ------------------------------------------------------------------------------------

def test_diff_takes_two_policies_then_claims(here, capsys):
    assert main(["diff", "reference", "jinhua", "c.parquet"]) == 0
    new = capsys.readouterr()
    assert DEPRECATED not in new.err and "参考政策 → 金华市" in new.out
    assert main(["diff", "--policy", "reference", "--policy", "jinhua",
                 "--claims", "c.parquet"]) == 0
    old = capsys.readouterr()
    assert old.err.count(DEPRECATED) == 2  # --policy, --claims
    assert old.out == new.out


def test_diff_with_one_policy_is_a_usage_error(here, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["diff", "reference", "c.parquet"])
    assert stop.value.code == 2
    assert "usage: yibao diff POLICY_A POLICY_B CLAIMS" in capsys.readouterr().err


# -- calibrate -------------------------------------------------------------------------------

def test_calibrate_takes_policy_then_two_years(here, capsys):
    pq.write_table(generate_claims(400, seed=1, start_year=2022), here / "y1.parquet")
    pq.write_table(generate_claims(400, seed=2, start_year=2023), here / "y2.parquet")
    common = ["--grouper", "drg", "--setting", "inpatient"]
    assert main(["calibrate", "jinhua", "y1.parquet", "y2.parquet", *common,
                 "--out", "new"]) == 0
    assert DEPRECATED not in capsys.readouterr().err
    assert main(["calibrate", "--policy", "jinhua", "y1.parquet", "y2.parquet", *common,
                 "--out", "old"]) == 0
    assert "--policy POLICY" in capsys.readouterr().err
    for name in ("drg_points.csv", "drg_coefficients.csv"):
        assert (here / "new" / name).read_bytes() == (here / "old" / name).read_bytes()


# -- counts and --out ------------------------------------------------------------------------

def test_generate_count_and_out_folder(here, capsys):
    assert main(["generate", "-n", "30", "--out", "claims"]) == 0
    assert DEPRECATED not in capsys.readouterr().err
    assert pq.read_table(here / "claims" / "claims.parquet").num_rows == 30
    assert main(["generate", "--count", "20", "--out", "claims"]) == 0
    assert pq.read_table(here / "claims").num_rows == 20  # the folder is a claims operand


def test_generate_old_spellings_still_work(here, capsys):
    assert main(["generate", "--claims", "12", "--out", "x.parquet"]) == 0
    err = capsys.readouterr().err
    assert "--claims N" in err and "-n/--count" in err
    assert "--out FILE.parquet" in err
    assert pq.read_table(here / "x.parquet").num_rows == 12


@pytest.mark.parametrize("name", ["x.csv", "claims.json", "out.xlsx"])
def test_generate_refuses_parquet_under_a_file_name(here, capsys, name):
    assert main(["generate", "-n", "5", "--out", name]) == 2
    err = capsys.readouterr().err
    assert "--out names a folder" in err and name in err
    assert not (here / name).exists()


def test_generate_refuses_an_existing_file(here, capsys):
    (here / "notes").write_text("keep me", encoding="utf-8")
    assert main(["generate", "-n", "5", "--out", "notes"]) == 2
    assert (here / "notes").read_text(encoding="utf-8") == "keep me"


def test_demo_count(capsys):
    assert main(["demo", "--city", "reference", "-n", "300"]) == 0
    captured = capsys.readouterr()
    assert "300 sample claims" in captured.out and DEPRECATED not in captured.err
    assert main(["demo", "--city", "reference", "--claims", "300"]) == 0
    captured = capsys.readouterr()
    assert "300 sample claims" in captured.out and "-n/--count" in captured.err


def test_help_shows_only_the_new_spellings(capsys):
    for command in ("settle", "explain", "diff", "calibrate", "generate", "demo"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        text = capsys.readouterr().out
        assert "--policy" not in text and "--claims" not in text, command
