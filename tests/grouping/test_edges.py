"""Bad data gives statuses, never exceptions; empty, chunked and partial inputs work; the
committed tables are what the converter produces from the published text."""
import json

import pyarrow as pa

from yibao.core.grouping.convert import convert_chs_drg, text_exclusion_tables
from yibao.core.grouping.drg import group_drg
from yibao.core.grouping.reference import group_claim
from yibao.core.grouping.tables import DATA_DIR, STATUSES

GOOD = {"principal_dx": "K22.301", "secondary_dx": ["I10.x05"], "procedures": ["96.0800x005"],
        "sex": 2, "age": 88, "age_days": None, "birth_weight": None}


def _statuses(rows, to_table):
    out = group_drg(to_table(rows)).column("drg_status").to_pylist()
    assert out == [group_claim(r).status for r in rows]
    return out


def test_invalid_inputs_give_statuses(to_table):
    rows = [GOOD, {**GOOD, "principal_dx": None}, {**GOOD, "principal_dx": "NOPE"},
            {**GOOD, "secondary_dx": ["NOPE"]}, {**GOOD, "procedures": ["99.9999x999"]},
            {**GOOD, "sex": 3}, {**GOOD, "sex": None}, {**GOOD, "age": None},
            {**GOOD, "age_days": -1}]
    assert _statuses(rows, to_table) == [
        "ok", "invalid_principal_dx", "invalid_principal_dx", "invalid_secondary_dx",
        "invalid_procedure", "invalid_sex", "invalid_sex", "invalid_age", "invalid_age"]


def test_null_lists_and_null_elements_are_ignored(to_table):
    rows = [{**GOOD, "secondary_dx": None, "procedures": None},
            {**GOOD, "secondary_dx": [None, "I10.x05"], "procedures": [None, "96.0800x005"]}]
    assert _statuses(rows, to_table) == ["ok", "ok"]


def test_empty_batch(to_table):
    out = group_drg(to_table([]))
    assert out.num_rows == 0 and out.column_names == ["drg", "drg_status", "mdc", "adrg",
                                                "stopped_at_mdc", "stopped_at_adrg"]


def test_chunked_input_and_missing_optional_columns(to_table):
    t = to_table([GOOD] * 3)
    chunked = pa.concat_tables([t.slice(0, 1), t.slice(1, 2)])
    assert group_drg(chunked).column("drg").to_pylist() == ["GZ15"] * 3
    bare = chunked.drop_columns(["age_days", "birth_weight"])
    assert group_drg(bare).column("drg").to_pylist() == ["GZ15"] * 3


def test_statuses_documented():
    assert STATUSES[0] == "ok" and "no_adrg" in STATUSES and "sex_conflict" in STATUSES


def test_city_mdc_order(expected_cases, to_table):
    row = next(r for i, _, r in expected_cases if i == "22069960")   # MA19, C61 male
    order = [m for m in json.loads((DATA_DIR / "scheme.json").read_text())["mdc_order"]
             if m != "MDCM"]
    res = group_claim(row, mdc_order=order)
    assert res.drg != "MA19"
    assert group_drg(to_table([row]), mdc_order=order).column("drg").to_pylist() == [res.drg]


SRC = "/work/shared/data/chs-drg-1.1"


def test_committed_tables_match_converter(tmp_path):
    convert_chs_drg(SRC, tmp_path)
    for name in ("scheme.json", "codes.json", "REPORT.txt"):
        assert (tmp_path / name).read_bytes() == (DATA_DIR / name).read_bytes(), name


def test_report_names_one_source_codes_and_adopted_mdc_codes():
    lines = [ln.split("\t") for ln in (DATA_DIR / "REPORT.txt").read_text().splitlines()
             if not ln.startswith("#")]
    assert ["one_source", "FU2.pdx", "I48.900x003"] in [ln[:3] for ln in lines]
    adopted = {(ln[1], ln[2]) for ln in lines if ln[0] == "mdc_list"}
    assert {("MDCD", "L04.002"), ("MDCD", "L04.003")} <= adopted
    # S12.910: listed under 头颈部创伤 by 4_ADRG_DETAIL.txt only (commented out in the .dat)
    assert ["one_source", "MDCZ.头颈部创伤", "S12.910"] in [ln[:3] for ln in lines]


def test_text_mcc_table_agrees_with_flat_file():
    """The text 5_MCC table (page-joined) is a near subset of MCC.dat; where both list a
    code they mostly agree on the exclusion table (differences are reported, not hidden)."""
    text = text_exclusion_tables(__import__("pathlib").Path(SRC) / "rules" / "5_MCC.txt")
    flat = json.loads((DATA_DIR / "codes.json").read_text())["mcc"]
    shared = [c for c in text if c in flat]
    assert len(shared) > 0.9 * len(text)
    assert sum(text[c] == flat[c] for c in shared) > 0.95 * len(shared)
