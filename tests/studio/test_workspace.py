"""The studio's glue without a browser: it answers what the CLI answers, and writes only
inside the folder, atomically."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from yibao.dsl.studio.highlight import highlight, keywords
from yibao.dsl.studio.workspace import (COMMITTED, WORKING, CsvTable, StudioError, Workspace,
                                        atomic_write, diagnostic_decorations, format_csv,
                                        offset_of, parse_csv, source_refs)

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def jinhua(tmp_path) -> Path:
    folder = tmp_path / "jinhua"
    shutil.copytree(REPO / "city_configs" / "jinhua", folder)
    return folder


def test_keywords_come_from_the_grammar():
    words = keywords()
    assert {"policy", "layer", "deductible", "ratio", "cap", "bands", "pool"} <= words
    assert "tier1" not in words and "yuan" in words  # yuan is a terminal, coloured as a unit


def test_highlight_marks_keywords_strings_numbers_comments():
    text = 'layer x "金惠保" {  # 注释\n  cap 300_000 yuan\n}'
    got = {(text[m["from"]:m["to"]], m["class"]) for m in highlight(text)}
    assert {("layer", "yb-kw"), ('"金惠保"', "yb-string"), ("# 注释", "yb-comment"),
            ("cap", "yb-kw"), ("300_000", "yb-number"), ("yuan", "yb-unit")} <= got
    assert not any(t == "x" for t, _ in got)


def test_check_gives_the_cli_diagnostics(jinhua):
    from yibao.dsl.compiler import check_text
    from yibao.dsl.errors import render
    ws = Workspace(jinhua)
    text = ws.read("policy.yb").replace("base in_scope - self_first", "base in_scope - slf")
    ok, diags = ws.check("policy.yb", text)
    _plan, expected = check_text(text, str(jinhua / "policy.yb"), jinhua, ws.registry)
    assert diags[0]["rendered"].startswith(f"{jinhua}/policy.yb:29:")
    assert not ok
    assert [(d["code"], d["line"], d["col"], d["rendered"]) for d in diags] == [
        (d.code, d.span.line, d.span.col, render(d, text)) for d in expected]
    assert diags[0]["code"] == "E201" and diags[0]["line"] == 29
    [line, mark] = diagnostic_decorations(text, diags)
    assert line == {"kind": "line", "line": 29, "class": "yb-error-line"}
    assert text[mark["from"]:mark["to"]] == "slf"


def test_files_are_named_as_the_user_wrote_the_folder(jinhua, monkeypatch):
    """`yibao studio jinhua` shows `jinhua/policy.yb:29:…`, as `yibao check jinhua` does."""
    monkeypatch.chdir(jinhua.parent)
    ws = Workspace("jinhua")
    _ok, [diag] = ws.check("policy.yb", ws.read("policy.yb").replace("- self_first", "- slf"))
    assert diag["rendered"].startswith("jinhua/policy.yb:29:")


def test_offset_of_counts_python_characters():
    text = "一二\n三四五\n"
    assert text[offset_of(text, 2, 2)] == "四"
    assert offset_of(text, 99, 99) == len(text)


def test_save_is_atomic_and_stays_in_the_folder(jinhua):
    ws = Workspace(jinhua)
    ws.save("policy.yb", ws.read("policy.yb") + "\n# 改\n")
    assert ws.read("policy.yb").endswith("# 改\n")
    assert sorted(os.listdir(jinhua)) == sorted(os.listdir(REPO / "city_configs" / "jinhua"))
    for bad in ("../x.yb", "/etc/passwd", "sub/x.csv", ""):
        with pytest.raises(StudioError):
            ws.save(bad, "x")
    assert not (jinhua.parent / "x.yb").exists()


def test_atomic_write_leaves_the_old_file_when_writing_fails(tmp_path):
    path = tmp_path / "policy.yb"
    path.write_text("old", encoding="utf-8")

    with pytest.raises(TypeError):
        atomic_write(path, 123)  # not text: nothing replaced, no temporary file left
    assert path.read_text(encoding="utf-8") == "old"
    assert os.listdir(tmp_path) == ["policy.yb"]


def test_csv_keeps_comment_lines_and_round_trips(jinhua):
    text = (jinhua / "signed.csv").read_text(encoding="utf-8")
    table = parse_csv(text)
    assert table.header == ["institution", "persons"] and table.comments[0].startswith("# ")
    assert format_csv(table) == text
    table.rows[0][1] = "43000"
    Workspace(jinhua).save_table("signed.csv", CsvTable(table.comments, table.header,
                                                        table.rows))
    assert "H01,43000\n" in (jinhua / "signed.csv").read_text(encoding="utf-8")


def test_run_explain_and_case_agree_with_the_cli_functions(jinhua):
    from yibao.core.explain import explain_claim, format_explanation
    from yibao.core.policytest import load_cases
    ws = Workspace(jinhua)
    stages = []
    run = ws.settle(n=1500, progress=lambda f, w: stages.append(f))
    assert stages[-1] == 1.0 and run.summary["settled"] + run.summary["rejected"] == 1500
    assert set(run.pools) == {"inpatient_drg", "outpatient_apg", "rehab_pdpm"}
    [first] = ws.find_claims(run.results.column("claim_id")[0].as_py())
    _ex, text = ws.explain(first["claim_id"])
    assert text == format_explanation(explain_claim(run.plans[0], run.claims,
                                                    first["claim_id"], ws.registry))
    assert source_refs(text.splitlines()[3])[0][1] == 27  # layer basic_inpatient's line
    cases_before = len(load_cases(jinhua / "tests.yaml"))
    ws.add_case(ws.case_from_claim(first["claim_id"]))
    results, covered = ws.run_tests()
    assert len(results) == cases_before + 1 and all(r.passed for r in results)
    assert (jinhua / "tests.yaml").read_text(encoding="utf-8").startswith("# Hand-checked")


def test_case_from_a_later_claim_pins_its_accumulated_result(jinhua):
    """A claim whose deductible an earlier claim of the person used: the case carries the
    earlier claims, so it passes as a case of its own."""
    ws = Workspace(jinhua)
    run = ws.settle(n=1500)
    people = run.claims.column("person_id").to_pylist()
    person = max(set(people), key=people.count)
    last = ws.find_claims(person)[-1]["claim_id"]
    case = ws.case_from_claim(last)
    assert len(case["claims"]) > 1 and case["claims"][-1]["claim_id"] == last
    ws.add_case(case)
    results, _ = ws.run_tests()
    assert results[-1].passed


def test_a_bad_claims_file_is_a_message_not_a_traceback(jinhua):
    from yibao.dsl.studio.workspace import could_not_run
    ws = Workspace(jinhua)
    for path in (jinhua / "policy.yb", jinhua / "missing.parquet"):
        with pytest.raises(could_not_run()):
            ws.settle(claims_file=str(path))
    assert ws.run is None


def test_explain_before_a_run_says_so(jinhua):
    with pytest.raises(StudioError, match="run the policy first"):
        Workspace(jinhua).explain("C0001")


def test_compare_working_copy_with_last_commit(jinhua):
    git = ["git", "-c", "user.email=t@t", "-c", "user.name=t", "-c", "commit.gpgsign=false"]
    subprocess.run(git + ["init", "-q"], cwd=jinhua, check=True)
    subprocess.run(git + ["add", "-A"], cwd=jinhua, check=True)
    subprocess.run(git + ["commit", "-qm", "x"], cwd=jinhua, check=True)
    ws = Workspace(jinhua)
    assert ws.compare_choices() == [WORKING, COMMITTED]
    same = ws.compare(COMMITTED, WORKING, n=1000)
    assert same.changed == 0 and same.totals["fund_a"] == same.totals["fund_b"]
    ws.save("policy.yb", ws.read("policy.yb").replace("tier1, 3: 85%", "tier1, 3: 80%"))
    moved = ws.compare(COMMITTED, WORKING, n=1000)
    assert moved.totals["fund_b"] < moved.totals["fund_a"]
    assert sorted(os.listdir(jinhua)) == sorted([".git", *os.listdir(
        REPO / "city_configs" / "jinhua")])


def test_compare_two_version_files_applies_b_to_a_claims(tmp_path):
    folder = tmp_path / "city"
    shutil.copytree(REPO / "city_configs" / "reference", folder)
    text = (folder / "policy.yb").read_text(encoding="utf-8")
    (folder / "policy.yb").rename(folder / "a.yb")
    start = text.split("effective ")[1].split(" to ")[0]
    year = int(start[:4])
    (folder / "b.yb").write_text(_next_version(text, year), encoding="utf-8")
    ws = Workspace(folder)
    assert ws.compare_choices()[-2:] == ["a.yb", "b.yb"]
    report = ws.compare("a.yb", "b.yb", n=800)
    # B's rules on A's claims (re-dated to A's period): the same rules, so nothing moves,
    # and no claim is lost to B's later period
    assert report.compared > 0 and report.rejected_b == report.rejected_a
    assert report.changed == 0


def _next_version(text: str, year: int) -> str:
    import re
    return re.sub(r"effective \S+ to \S+", f"effective {year + 1}-01-01 to {year + 1}-12-31",
                  text, count=1)
