"""The rulings of spec/point-method.md §1, one kind at a time, on the kernel and the reference.

Each case is an example of a kind of disagreement found against the public OpenDRG grouper
(issue 10); every case here grouped differently before the rulings were applied."""
import pytest

from yibao.core.grouping.drg import group_drg
from yibao.core.grouping.reference import group_claim
from yibao.core.grouping.tables import load_tables

T = load_tables()
COLUMNS = ("drg", "drg_status", "mdc", "adrg", "stopped_at_mdc", "stopped_at_adrg")


def claim(pdx, sdx=(), procs=(), sex=1, age=40, days=None, weight=None):
    return {"principal_dx": pdx, "secondary_dx": list(sdx), "procedures": list(procs),
            "sex": sex, "age": age, "age_days": days, "birth_weight": weight}


def both(row, to_table):
    """The kernel's result, after checking the reference agrees."""
    got = tuple(group_drg(to_table([row])).to_pylist()[0][c] for c in COLUMNS)
    assert got == tuple(group_claim(row, T)), row
    return got


def grouped(drg):
    return (drg, "ok", "MDC" + drg[0], drg[:3], None, None)


PB1_PROC = sorted(T.proc_sets["PB1.pproc"])[0]

CASES = {
    # …1/…5 only: a CC without an MCC is …5 (S12.900x001 is a CC outside S06.201's table)
    "cc_in_1_5_split": (claim("S06.201", ["S12.900x001"]), grouped("ZZ15")),
    # PV1 is 29 days to < 1 year; PU1 (and every other MDCP ADRG) < 29 days
    "pv1_231_days": (claim("P61.800", age=0, days=231), grouped("PV15")),
    "pv1_not_pk1": (claim("P59.901", procs=["96.7101"], age=0, days=60), grouped("PV15")),
    "pb1_newborn": (claim("P07.300", procs=[PB1_PROC], age=0, days=10), grouped("PB19")),
    # a newborn claim without the value the deciding rule reads: ungrouped, with the reason
    "newborn_without_age_days": (
        claim("P07.300", procs=[PB1_PROC], age=0),
        (None, "missing_age_days", None, None, "MDCP", "PB1")),
    "newborn_without_weight": (
        claim("P07.300", age=0, days=3),
        (None, "missing_birth_weight", None, None, "MDCP", "PS1")),
    "newborn_weight_zero_is_not_recorded": (
        claim("P07.300", age=0, days=3, weight=0),
        (None, "missing_birth_weight", None, None, "MDCP", "PS1")),
    # 且无手术: the OR procedure 35.4200 after the non-OR principal 83.9600 rules ZZ1 out
    "no_or_procedure_at_all": (claim("S37.003", ["S85.200"], ["83.9600", "35.4200"]),
                               grouped("LZ15")),
    # I48.900x003 is in ADRG/FU2…dat only
    "code_of_dat_file_only": (claim("I48.900x003", age=70), grouped("FU25")),
    # one code listed under two MDCZ regions is not multiple trauma, even written twice
    "one_code_two_regions": (claim("S12.910"), grouped("IU29")),
    "one_code_twice": (claim("S12.910", ["S12.910"]), grouped("IU29")),
    # a principal dx the MDC's own ADRG lists name belongs to that MDC
    "adrg_dx_missing_from_mdc_list": (claim("L04.002"), grouped("DZ19")),
    "adrg_dx_missing_from_mdc_list_dw1": (claim("L04.003"), grouped("DW19")),
    # an ungrouped claim: mdc/adrg null, where it stopped in its own column
    "ungrouped_has_no_mdc": (claim("Z00.000", procs=["00.5500"]),
                             (None, "no_adrg", None, None, "MDCA", None)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_ruling(name, to_table):
    row, want = CASES[name]
    assert both(row, to_table) == want


def test_two_codes_in_two_regions_are_multiple_trauma(to_table):
    assert both(claim("S06.201", ["S12.900x001"]), to_table)[3] == "ZZ1"
    # two codes of one region only: not multiple trauma
    head = [c for c, rs in sorted(T.trauma_regions.items()) if rs == ("头颈部创伤",)]
    assert both(claim(head[0], [head[1]]), to_table)[2] != "MDCZ"


def test_split_3_5_puts_an_mcc_in_3(to_table):
    """BT1 has only …3 (伴并发症或合并症) and …5: an MCC lands in …3."""
    assert T.scheme["adrg"]["BT1"]["drgs"].keys() == {"3", "5"}
    assert both(claim("A80.000", ["A01.100"], age=50), to_table) == grouped("BT13")


def test_mdcp_rules_all_read_age_days():
    """Every MDCP ADRG needs < 29 days, except PV1 which needs 29 days or more."""
    for code in T.scheme["mdc"]["MDCP"]["adrgs"]:
        for rule in T.scheme["adrg"][code]["rules"]:
            want = ["age_days_ge", 29] if code == "PV1" else ["age_days_lt", 29]
            assert want in rule, code


def test_zz1_reads_all_procedures():
    assert ["no_or_proc", None] in T.scheme["adrg"]["ZZ1"]["rules"][0]


def test_adopted_codes_are_in_the_mdc_list():
    assert {"L04.002", "L04.003"} <= T.dx_sets["MDCD"]
    assert "I48.900x003" in T.dx_sets["FU2.pdx"]


def test_explain_shows_where_an_undecided_claim_stopped():
    from yibao.core.grouping.reference import explain_drg
    steps = explain_drg(claim("P07.300", procs=[PB1_PROC], age=0))
    assert [s["step"] for s in steps[-2:]] == ["undecided", "result"]
    assert steps[-2]["code"] == "PB1" and steps[-2]["rule"] == "missing_age_days"
    assert steps[-1]["status"] == "missing_age_days"
