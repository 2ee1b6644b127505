"""`diff`: two policies over generated claims; the report's numbers recomputed independently."""
from __future__ import annotations

import json
import re

import pyarrow.parquet as pq
import pytest

from yibao.core.diff import diff_policies, histogram
from yibao.core.engine import settle
from yibao.core.generate import generate_claims
from yibao.dsl.cli import main
from yibao.dsl.compiler import compile_policy

from .conftest import CONFIGS


@pytest.fixture(scope="module")
def changed(tmp_path_factory):
    """The reference policy with tier2 tertiary inpatient at 90% instead of 85%."""
    folder = tmp_path_factory.mktemp("changed")
    text = (CONFIGS / "reference" / "policy.yb").read_text(encoding="utf-8")
    (folder / "policy.yb").write_text(text.replace("tier2, 3: 85%", "tier2, 3: 90%"),
                                      encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def claims():
    return generate_claims(3_000, seed=11)


def test_report_equals_settling_twice(reference_plan, changed, claims):
    plan_b = compile_policy(changed)
    r = diff_policies(reference_plan, plan_b, claims, top=5)
    a = {x["claim_id"]: x for x in settle(reference_plan, claims).results.to_pylist()}
    b = {x["claim_id"]: x for x in settle(plan_b, claims).results.to_pylist()}
    assert r.compared == len(a) == len(b)
    layers = {x["layer"]: x for x in r.layers.to_pylist()}
    for name in ("basic_inpatient", "critical", "assistance"):
        assert layers[name]["fund_a"] == sum(x[name] for x in a.values())
        assert layers[name]["fund_b"] == sum(x[name] for x in b.values())
    assert layers["basic_inpatient"]["change"] > 0
    assert layers["basic_outpatient"]["change"] == 0
    delta = {cid: b[cid]["self_pay"] - a[cid]["self_pay"] for cid in a}
    assert r.changed == sum(d != 0 for d in delta.values()) > 0
    assert r.raised == sum(d > 0 for d in delta.values())
    assert r.lowered == sum(d < 0 for d in delta.values()) and r.changed == r.raised + r.lowered
    assert sum(r.histogram.column("claims").to_pylist()) == r.changed
    biggest = sorted((abs(d) for d in delta.values()), reverse=True)[:5]
    assert [abs(c) for c in r.movers.column("change").to_pylist()] == biggest
    # other claims of a tier2 person move too (their yearly deductibles and caps shift),
    # so per-group changes are checked against the same grouping of the per-claim deltas
    attrs = {c: (t, lv) for c, t, lv in zip(*(claims.column(n).to_pylist() for n in
                                              ("claim_id", "tier", "hospital_level")))}
    for table, pos in ((r.tiers, 0), (r.levels, 1)):
        key = table.column_names[0]
        for row in table.to_pylist():
            want = -sum(d for cid, d in delta.items() if attrs[cid][pos] == row[key])
            assert row["change"] == want, (key, row)
    assert r.totals["fund_b"] - r.totals["fund_a"] == -sum(delta.values())


def test_same_policy_changes_nothing(reference_plan, claims):
    r = diff_policies(reference_plan, reference_plan, claims.slice(0, 500))
    assert r.changed == 0 and r.movers.num_rows == 0 and r.histogram.num_rows == 0
    assert r.totals["fund_a"] == r.totals["fund_b"]


def test_histogram_integer_bins():
    import numpy as np
    h = histogram(np.array([-5, 0, 1, 9, 10], dtype=np.int64), bins=3)
    assert h.column("lo").to_pylist() == [-5, 1, 7]
    assert h.column("hi").to_pylist() == [1, 7, 13]
    assert h.column("claims").to_pylist() == [2, 1, 2]


def test_diff_command_table_and_html(tmp_path, changed, claims, capsys):
    pq.write_table(claims.slice(0, 800), tmp_path / "c.parquet")
    out_html = tmp_path / "report.html"
    assert main(["diff", str(CONFIGS / "reference"), str(changed),
                 str(tmp_path / "c.parquet"), "--html", str(out_html)]) == 0
    out = capsys.readouterr().out
    assert "fund spending per layer" in out and "largest movers" in out
    page = out_html.read_text(encoding="utf-8")
    assert "<html lang='zh-CN'>" in page and '"Noto Sans CJK SC"' in page
    # plotly.js inlined once, nothing loaded from elsewhere
    assert page.count("<script") == page.count("</script>") and "<script src" not in page
    assert "<link" not in page and "@import" not in page
    assert page.count("Plotly.newPlot(") == 4  # three pair charts and the histogram
    r = diff_policies(compile_policy(CONFIGS / "reference"), compile_policy(changed),
                      claims.slice(0, 800), top=10)
    assert f"… down 下降</td><td class=num>{r.lowered:,}</td>" in page and r.lowered > 0
    assert page.count("<thead>") == 5  # summary, three sections, movers
    assert "<th scope='col'>claim 病例</th>" in page
    # plotly writes its JSON with or without \\u escapes (by whether orjson is installed):
    # read the strings back rather than match their spelling
    strings = lambda key: {json.loads(m) for m in re.findall(  # noqa: E731
        rf'"{key}":\s*("(?:[^"\\]|\\.)*")', page)}
    for side in "AB":  # the legend names each policy
        assert f"{side}: 参考政策" in strings("name")
    assert "病例数 claims" in strings("text")  # histogram axes


def test_diff_of_two_missing_policies_cannot_run(tmp_path, changed, claims, capsys):
    pq.write_table(claims.slice(0, 100), tmp_path / "c.parquet")
    with pytest.raises(SystemExit) as stop:  # one policy: a usage error of diff
        main(["diff", str(changed), str(tmp_path / "c.parquet")])
    assert stop.value.code == 2
    assert "usage: yibao diff POLICY_A POLICY_B CLAIMS" in capsys.readouterr().err
