"""Versions in force: each claim settled under the version in force on its discharge date;
gaps and overlaps are compile-time errors with file:line; a mid-year change carries the
accumulators when the versions share their layer structure (kernel == reference) and is
refused across different structures."""
from __future__ import annotations

import pytest

from yibao.core.engine import settle
from yibao.core.reference import settle as settle_reference
from yibao.core.policytest import claims_table
from yibao.core.settlement import VersionError
from yibao.dsl.errors import PolicyError
from yibao.dsl.versions import compile_versions

from .conftest import CONFIGS

SOURCE = (CONFIGS / "reference" / "policy.yb").read_text(encoding="utf-8")
RANGE = "effective 2024-01-01 to 2025-12-31"


def version(folder, name, start, end, tier2_level3="85%"):
    text = SOURCE.replace(RANGE, f"effective {start} to {end}")
    text = text.replace("tier2, 3: 85%", f"tier2, 3: {tier2_level3}")
    (folder / name).write_text(text, encoding="utf-8")


def claim(cid, person, date):
    return dict(claim_id=cid, person_id=person, discharge_date=date, setting="inpatient",
                hospital_level=3, tier="tier2", total=50_000, in_scope=45_000, self_first=2_000)


@pytest.fixture
def two_years(tmp_path):
    version(tmp_path, "policy_2024.yb", "2024-01-01", "2024-12-31")
    version(tmp_path, "policy_2025.yb", "2025-01-01", "2025-12-31", tier2_level3="90%")
    return tmp_path


def test_each_claim_under_the_version_in_force(two_years):
    plans = compile_versions(two_years).versions
    assert [p.effective_from for p in plans] == sorted(p.effective_from for p in plans)
    rows = [claim("a24", "p", "2024-06-01"), claim("a25", "p", "2025-06-01"),
            claim("b24", "q", "2024-12-31"), claim("x", "q", "2026-01-02")]
    table = claims_table(rows, plans[0])
    out = settle(plans, table)
    got = {r["claim_id"]: r["basic_inpatient"] for r in out.results.to_pylist()}
    # 42,200 after the 800 deductible: × 85% in 2024, × 90% in 2025
    assert got == {"a24": 3_587_000, "b24": 3_587_000, "a25": 3_798_000}
    assert out.rejects.to_pylist()[0]["claim_id"] == "x"
    assert out.rejects.to_pylist()[0]["row"] == 3
    assert out.results.num_rows + out.rejects.num_rows == out.input_rows == 4


def test_last_years_claims_give_last_years_answers(two_years):
    """The 2024 claims under the folder == the 2024 version alone (accumulators included)."""
    plans = compile_versions(two_years).versions
    rows = [claim(f"c{i}", "p", f"2024-{m:02d}-10") for i, m in enumerate((2, 5, 9, 11))]
    rows += [claim("n1", "p", "2025-02-10")]
    table = claims_table(rows, plans[0])
    alone = settle(plans[0], claims_table(rows[:4], plans[0])).results.to_pylist()
    both = settle(plans, table).results.to_pylist()
    assert both[:4] == [dict(r) for r in alone]
    # 2025 starts afresh: its whole critical base 45,000 − 37,980 is deductible again (2024's
    # four claims had consumed all 20,000)
    assert both[4]["critical_deductible"] == 702_000


@pytest.mark.parametrize("second, code, line_text", [
    (("2025-02-01", "2025-12-31"), "E601", "no version is in force from 2025-01-01 to 2025-01-31"),
    (("2024-12-01", "2025-12-31"), "E602", "previous version runs to 2024-12-31"),
])
def test_gap_and_overlap_are_compile_errors(tmp_path, second, code, line_text):
    version(tmp_path, "a.yb", "2024-01-01", "2024-12-31")
    version(tmp_path, "b.yb", *second)
    with pytest.raises(PolicyError) as info:
        compile_versions(tmp_path)
    assert info.value.codes == [code]
    text = str(info.value)
    assert f"{tmp_path / 'b.yb'}:4:" in text and line_text in text and "^" in text


def test_mid_year_change_refused_only_across_structures(tmp_path):
    """Versions whose layers differ in structure (here: the outpatient deductible per claim
    instead of per year) cannot carry a key's accumulators across a mid-year change."""
    version(tmp_path, "a.yb", "2024-01-01", "2024-06-30")
    text = SOURCE.replace(RANGE, "effective 2024-07-01 to 2024-12-31").replace(
        "deductible 1_000 yuan per person per year", "deductible 1_000 yuan per claim")
    (tmp_path / "b.yb").write_text(text, encoding="utf-8")
    plans = compile_versions(tmp_path).versions
    apart = claims_table([claim("a", "p", "2024-03-01"), claim("b", "q", "2024-09-01")],
                         plans[0])
    got = {r["claim_id"]: r["basic_inpatient"] for r in settle(plans, apart)
           .results.to_pylist()}
    assert got == {"a": 3_587_000, "b": 3_587_000}
    spans = claims_table([claim("a", "p", "2024-03-01"), claim("b", "p", "2024-09-01")],
                         plans[0])
    with pytest.raises(VersionError, match="person 'p' in 2024"):
        settle(plans, spans)


def test_mid_year_change_carries_deductible_and_caps(tmp_path):
    """Same structure, new amounts from July: the critical deductible (20,000 → 15,000 yuan)
    and cap (300,000 → 250,000 yuan) already consumed in the first half count in the
    second; the 2nd-half ratio 90% applies to the July claim."""
    version(tmp_path, "a.yb", "2024-01-01", "2024-06-30")
    text = SOURCE.replace(RANGE, "effective 2024-07-01 to 2024-12-31")
    text = text.replace("tier2, 3: 85%", "tier2, 3: 90%")
    text = text.replace("deductible 20_000 yuan per person", "deductible 15_000 yuan per person")
    text = text.replace("cap 300_000 yuan per person per year, 500_000",
                        "cap 250_000 yuan per person per year, 500_000")
    (tmp_path / "b.yb").write_text(text, encoding="utf-8")
    plans = compile_versions(tmp_path).versions
    big = dict(total=50_000, in_scope=50_000, self_first=0)
    rows = [dict(claim("a", "p", "2024-03-01"), **big), dict(claim("b", "p", "2024-09-01"), **big)]
    rows += [dict(claim(f"c{i}", "p", f"2024-10-{10 + i}"), total=900_000,
                  in_scope=900_000, self_first=0) for i in range(3)]
    out = {r["claim_id"]: r for r in settle(plans, claims_table(rows, plans[0]))
           .results.to_pylist()}
    # a: basic (50,000 − 800) × 85% = 41,820; critical base 8,180, all deductible (of 20,000)
    assert out["a"]["basic_inpatient"] == 4_182_000
    assert out["a"]["critical_deductible"] == 818_000
    # b: basic (50,000 − 800) × 90% = 44,280; critical base 5,720: 15,000 − 8,180 = 6,820
    # deductible left, so 5,720 more is deductible (restarting would also take 5,720 — the
    # next claim tells: only 1,100 is left)
    assert out["b"]["basic_inpatient"] == 4_428_000
    assert out["b"]["critical_deductible"] == 572_000
    assert out["c0"]["critical_deductible"] == 110_000
    # the shared basic cap (300,000 yuan) carries too: 41,820 + 44,280 already paid
    assert out["c0"]["basic_inpatient"] == 30_000_000 - 4_182_000 - 4_428_000
    # the critical cap is the second half's 250,000 yuan, less what was paid in the first
    paid = sum(out[c]["critical"] for c in out)
    assert paid == 25_000_000
    with_ref = settle_reference(plans, claims_table(rows, plans[0])).results
    assert with_ref.to_pylist() == settle(plans, claims_table(rows, plans[0])) \
        .results.to_pylist()


def test_one_policy_file_is_one_version():
    plans = compile_versions(CONFIGS / "reference").versions
    assert len(plans) == 1 and plans[0].name == "参考政策"


# -- kernel == reference across a mid-year change ------------------------------------------

from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402


def _mid_year(tmp_path_factory):
    folder = tmp_path_factory.mktemp("midyear")
    version(folder, "a.yb", "2024-01-01", "2024-05-31")
    text = SOURCE.replace(RANGE, "effective 2024-06-01 to 2025-12-31")
    for old, new in (("tier2, 3: 85%", "tier2, 3: 90%"), ("tier1, 2: 90%", "tier1, 2: 80%"),
                     ("deductible 20_000 yuan per person", "deductible 12_000 yuan per person"),
                     ("3: 800 yuan", "3: 1_200 yuan"),
                     ("cap 5_000 yuan per person", "cap 3_000 yuan per person"),
                     ("self_pay_limit 50_000", "self_pay_limit 40_000"),
                     ("cap 300_000 yuan per person per year, 500_000",
                      "cap 200_000 yuan per person per year, 400_000")):
        assert old in text
        text = text.replace(old, new)
    (folder / "b.yb").write_text(text, encoding="utf-8")
    return compile_versions(folder).versions


_claims = st.lists(st.fixed_dictionaries({
    "person": st.sampled_from(["p", "q", "r"]),
    "day": st.integers(0, 540),  # 2024-01-01 .. mid 2025
    "setting": st.sampled_from(["inpatient", "outpatient", "rehab"]),
    "level": st.integers(1, 3), "tier": st.sampled_from(["tier1", "tier2", "tier3"]),
    "in_scope": st.integers(0, 400_000), "extra": st.integers(0, 5_000),
    "low_income": st.booleans()}), max_size=25)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=_claims)
def test_kernel_equals_reference_across_a_mid_year_change(tmp_path_factory, batch):
    import datetime
    plans = test_kernel_equals_reference_across_a_mid_year_change.plans \
        if hasattr(test_kernel_equals_reference_across_a_mid_year_change, "plans") else None
    if plans is None:
        plans = _mid_year(tmp_path_factory)
        test_kernel_equals_reference_across_a_mid_year_change.plans = plans
    rows = [dict(claim_id=f"c{i:03d}", person_id=c["person"],
                 discharge_date=(datetime.date(2024, 1, 1)
                                 + datetime.timedelta(days=c["day"])).isoformat(),
                 setting=c["setting"], hospital_level=c["level"], tier=c["tier"],
                 total=c["in_scope"] + c["extra"], in_scope=c["in_scope"],
                 self_first=min(c["extra"], c["in_scope"]), low_income=c["low_income"])
            for i, c in enumerate(batch)]
    table = claims_table(rows, plans[0])
    kernel = settle(plans, table)
    ref = settle_reference(plans, table)
    assert kernel.results.to_pylist() == ref.results.to_pylist()
    assert kernel.rejects.to_pylist() == ref.rejects.to_pylist()


def test_check_and_plan_show_every_version(two_years, capsys):
    from yibao.dsl.cli import main
    assert main(["check", str(two_years)]) == 0
    out = capsys.readouterr().out
    assert "policy_2024.yb: ok" in out and "policy_2025.yb: ok" in out
    assert "2 versions in force without gap or overlap" in out
    assert main(["plan", str(two_years)]) == 0
    out = capsys.readouterr().out
    assert "# version 1 of 2: 2024-01-01 to 2024-12-31" in out
    assert "# version 2 of 2: 2025-01-01 to 2025-12-31" in out
    version(two_years, "policy_2026.yb", "2026-02-01", "2026-12-31")
    assert main(["check", str(two_years)]) == 1  # a finding, as linters exit
    assert "E601" in capsys.readouterr().err


def test_spark_refuses_several_versions(two_years, tmp_path):
    import pyarrow.parquet as pq
    from yibao.core.runner import InputError, run_settle
    plans = compile_versions(two_years).versions
    pq.write_table(claims_table([claim("a", "p", "2024-06-01")], plans[0]), tmp_path / "c.parquet")
    with pytest.raises(InputError, match="Spark engine settles under one version"):
        run_settle(plans, tmp_path / "c.parquet", tmp_path / "out", engine="spark",
                   progress=False)
