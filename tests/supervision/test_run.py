"""Supervision in a batch run: flags.parquet and hospital_indicators.parquet come out of
`yibao settle` (staged, hashed in the manifest, counted in summary.json), the same bytes in
memory and in partitions; the review effect puts pending_review into claims.parquet; `yibao
explain` says why a claim was flagged."""
from __future__ import annotations

import argparse
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from yibao.core import supervision
from yibao.core.engine import settle
from yibao.core.runner import run_settle
from supervision_helpers import FLAGS, HEADER, _random_claims, city, claim

OUT = ("flags.parquet", "hospital_indicators.parquet", "claims.parquet")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("supervised")
    plan = city(folder, FLAGS)
    (folder / "policy.yb").write_text(HEADER + FLAGS, encoding="utf-8")
    rows = _random_claims(11, 400)
    pq.write_table(pa.Table.from_pylist(rows), folder / "in.parquet", row_group_size=70)
    mem = run_settle(plan, folder / "in.parquet", folder / "mem", progress=False)
    parts = run_settle(plan, folder / "in.parquet", folder / "p3", progress=False,
                       partitions=3)
    return folder, plan, rows, mem, parts


def test_same_bytes_in_memory_and_in_three_partitions(runs):
    folder, _, _, mem, parts = runs
    assert parts.mode == "partitioned"
    for name in OUT:
        assert (folder / "mem" / name).read_bytes() == (folder / "p3" / name).read_bytes(), name


def test_outputs_are_the_in_memory_evaluation(runs):
    folder, plan, rows, mem, _ = runs
    claims = pa.Table.from_pylist(rows)
    expected = supervision.evaluate(plan, claims, settle(plan, claims).results)
    assert pq.read_table(folder / "mem" / "flags.parquet").equals(expected.flags)
    assert pq.read_table(folder / "mem" / "hospital_indicators.parquet").equals(
        expected.indicators)
    results = pq.read_table(folder / "mem" / "claims.parquet")
    held = {r["claim_id"]: r["pending_review"] for r in results.to_pylist()}
    assert {k: v for k, v in held.items() if v} == dict(
        zip(*expected.held.to_pydict().values()))
    assert sum(1 for v in held.values() if v) == expected.held.num_rows > 0


def test_summary_and_manifest(runs):
    folder, plan, _, mem, _ = runs
    summary = json.loads((folder / "mem" / "summary.json").read_text())
    flags = pq.read_table(folder / "mem" / "flags.parquet").column("rule").to_pylist()
    assert summary["supervision"]["flags"] == {r: flags.count(r) for r in sorted(set(flags))}
    assert summary["supervision"]["held_claims"] > 0 and summary["balanced"]
    manifest = json.loads((folder / "mem" / "manifest.json").read_text())
    assert manifest["outputs"]["flags.parquet"]["rows"] == len(flags)
    assert "hospital_indicators.parquet" in manifest["outputs"]


def test_a_policy_without_flags_writes_no_supervision_file(tmp_path):
    plan = city(tmp_path, "")
    pq.write_table(pa.Table.from_pylist([claim("a", "p", "H1", "AB15", 100, 1, 2)]),
                   tmp_path / "in.parquet")
    summary = run_settle(plan, tmp_path / "in.parquet", tmp_path / "o", progress=False)
    assert not (tmp_path / "o" / "flags.parquet").exists()
    assert "supervision" not in summary.as_dict()
    assert "pending_review" not in pq.read_table(tmp_path / "o" / "claims.parquet").column_names


def test_cli_settle_prints_and_explain_says_why(runs, tmp_path, capsys):
    from yibao.dsl.commands import explain, settle as cmd
    folder, _, _, _, _ = runs
    args = argparse.Namespace(claims=[str(folder / "in.parquet")],
                              policy=str(folder / "policy.yb"), out=str(tmp_path / "o"),
                              memory_limit=None, engine="local", partitions=None,
                              overwrite=False, no_progress=True)
    assert cmd.run(args) == 0
    assert "supervision: " in capsys.readouterr().out
    flags = pq.read_table(tmp_path / "o" / "flags.parquet").to_pylist()
    split = next(r for r in flags if r["rule"] == "split_stay")
    ask = argparse.Namespace(policy=str(folder / "policy.yb"), claims=str(folder / "in.parquet"),
                             claim_id=split["claim_id"], json=False, drg=False)
    assert explain.run(ask) == 0
    text = capsys.readouterr().out
    assert "supervision (医保基金监管):" in text
    assert (f"flag split_stay '分解住院', severity notice: admitted {split['value']} day(s) "
            f"after the discharge of {', '.join(split['related'])} at the same hospital") in text
    assert "is held as pending_review until the claim is reviewed" in text
    earlier = argparse.Namespace(**{**vars(ask), "claim_id": split["related"][0], "json": True})
    assert explain.run(earlier) == 0
    data = json.loads(capsys.readouterr().out)
    assert any(r["claim_id"] == split["claim_id"] for r in data["supervision"])


def test_policy_test_cases_state_flags_and_fail_on_a_wrong_one(tmp_path):
    """tests.yaml `flags:` lists the rules that flag a claim or hospital, exactly; a wrong
    list is a mismatch naming the claim; `pending_review` is an expectable column."""
    from yibao.core.policytest import load_cases, run_cases
    plan = city(tmp_path, FLAGS)
    claims = """
- name: split
  claims:
    - {claim_id: a, person_id: p, hospital_id: H1, grp: ab15, total: 1000, in_scope: 1000,
       self_first: 0, admit_date: 2024-01-01, discharge_date: 2024-01-03, hospital_level: 3}
    - {claim_id: b, person_id: p, hospital_id: H1, grp: ab15, total: 1000, in_scope: 1000,
       self_first: 0, admit_date: 2024-01-05, discharge_date: 2024-01-06, hospital_level: 3}
  expect:
    b: {pending_review: 800}  # yuan: 80% of 1,000 held
  flags:
    a: []
    b: [WRONG]
"""
    (tmp_path / "tests.yaml").write_text(claims, encoding="utf-8")
    results, _ = run_cases(plan, load_cases(tmp_path / "tests.yaml"))
    bad = results[0].mismatches
    assert [(m.claim_id, m.column, m.expected, m.actual) for m in bad] == [
        ("b", "flags", "WRONG", "split_stay")]
