"""The 24 OpenDRG cases with an expected DRG group to it on the kernel and the reference."""
from yibao.core.grouping.drg import group_drg
from yibao.core.grouping.reference import explain_drg, group_claim


def test_there_are_24_expected_cases(expected_cases):
    assert len(expected_cases) == 24


def test_reference_groups_every_case(expected_cases):
    got = {i: group_claim(row) for i, _, row in expected_cases}
    wrong = {i: (drg, got[i]) for i, drg, _ in expected_cases
             if (got[i].status, got[i].drg) != ("ok", drg)}
    assert wrong == {}


def test_kernel_groups_every_case(expected_cases, to_table):
    out = group_drg(to_table([row for _, _, row in expected_cases])).to_pylist()
    assert [o["drg"] for o in out] == [drg for _, drg, _ in expected_cases]
    assert {o["drg_status"] for o in out} == {"ok"}


def test_sex_specific_case_needs_male(expected_cases, to_table):
    row = dict(next(r for i, _, r in expected_cases if i == "22069960"))
    assert group_claim(row).drg == "MA19"
    row["sex"] = 2      # prostate cancer in a woman: the MDCM list is the other sex's
    res = group_claim(row)
    assert res.status == "sex_conflict" and res.drg is None
    assert group_drg(to_table([row])).column("drg_status").to_pylist() == ["sex_conflict"]


def test_explain_lists_mdc_adrg_drg(expected_cases):
    row = next(r for i, _, r in expected_cases if i == "22085292")     # EC11, with an MCC
    steps = explain_drg(row)
    # An MDC whose entry holds but has no matching ADRG is shown, then falls through.
    assert {s["step"] for s in steps[:-4]} <= {"mdc", "mdc_no_adrg"}
    assert [s["step"] for s in steps[-4:]] == ["mdc", "adrg", "drg", "result"]
    assert [s["code"] for s in steps[-4:-1]] == ["MDCE", "EC1", "EC11"]
    assert steps[-2]["rule"]["severity"] == "MCC"
    assert steps[-1]["status"] == "ok"
