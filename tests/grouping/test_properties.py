"""Hypothesis: kernel == reference on random claims drawn from the real code lists, plus
severity properties (an MCC never lowers the DRG, an excluded CC never raises it)."""
import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from yibao.core.grouping.drg import group_drg
from yibao.core.grouping.reference import group_claim, severity, normalise
from yibao.core.grouping.tables import load_tables

T = load_tables()
DX = sorted(T.diagnoses)
PROC = sorted(T.procedures)
# Codes the rules name, so random claims reach ADRGs and not only MDC fall-through.
RULE_DX = sorted({c for s in T.dx_sets.values() for c in s})
RULE_PROC = sorted({c for s in T.proc_sets.values() for c in s} | T.or_procedures)
MCC = sorted(T.mcc)
CC = sorted(T.cc)
BAD = ["", "XYZ", "K22.301 ", "00.0000x999"]

dx = st.one_of(st.sampled_from(RULE_DX), st.sampled_from(DX), st.sampled_from(MCC),
               st.sampled_from(CC))
proc = st.one_of(st.sampled_from(RULE_PROC), st.sampled_from(PROC))
maybe_bad = lambda s: st.one_of(s, s, s, s, s, s, s, s, s, st.sampled_from(BAD), st.none())  # noqa: E731



def _claims(code_dx, code_proc, sexes, ages, days):
    return st.fixed_dictionaries({
        "principal_dx": code_dx,
        "secondary_dx": st.one_of(st.lists(code_dx, max_size=6), st.none()),
        "procedures": st.one_of(st.lists(code_proc, max_size=4), st.none()),
        "sex": sexes, "age": ages, "age_days": days,
        "birth_weight": st.one_of(st.none(), st.integers(0, 4500)),
    })


# Clean claims (valid codes and demographics) reach ADRGs; dirty ones exercise statuses.
clean = _claims(dx, proc, st.sampled_from([1, 2]),
                st.one_of(st.integers(0, 100), st.just(0)),
                st.one_of(st.none(), st.integers(0, 400)))
dirty = _claims(maybe_bad(dx), maybe_bad(proc), st.sampled_from([1, 2, 0, None]),
                st.one_of(st.integers(0, 100), st.none(), st.just(-1)),
                st.one_of(st.none(), st.integers(0, 400), st.just(-3)))
# Newborns and infants: MDCP principal dx, age 0, age_days / birth weight known or not.
MDCP_DX = sorted(T.dx_sets["MDCP"])
TRAUMA_DX = sorted(T.trauma_regions)
newborn = _claims(st.one_of(st.sampled_from(MDCP_DX), dx), proc, st.sampled_from([1, 2]),
                  st.just(0), st.one_of(st.none(), st.integers(0, 40), st.integers(0, 400)))
trauma = _claims(st.sampled_from(TRAUMA_DX), proc, st.sampled_from([1, 2]),
                 st.integers(0, 100), st.none())
claims = st.one_of(clean, clean, clean, dirty, newborn, trauma)
SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


COLUMNS = ("drg", "drg_status", "mdc", "adrg", "stopped_at_mdc", "stopped_at_adrg")


def _kernel(rows, to_table, mdc_order=None):
    return [tuple(o[c] for c in COLUMNS)
            for o in group_drg(to_table(rows), mdc_order=mdc_order).to_pylist()]


@SETTINGS
@given(st.lists(claims, max_size=25))
def test_kernel_equals_reference(to_table, rows):
    assert _kernel(rows, to_table) == [tuple(group_claim(r, T)) for r in rows]


@SETTINGS
@given(st.lists(claims, min_size=1, max_size=25), st.data())
def test_slices_with_offsets(to_table, rows, data):
    start = data.draw(st.integers(0, len(rows)))
    stop = data.draw(st.integers(start, len(rows)))
    out = group_drg(to_table(rows).slice(start, stop - start)).to_pylist()
    assert [o["drg"] for o in out] == [group_claim(r, T).drg for r in rows[start:stop]]


RANK = {"1": 2, "3": 1, "5": 0, "9": 0}


def _valid_grouped(row):
    return group_claim(row, T).status == "ok"


@SETTINGS
@given(claims, st.sampled_from(MCC))
def test_adding_an_mcc_never_lowers_severity(to_table, row, extra):
    row = {**row, "secondary_dx": list(row["secondary_dx"] or [])}
    plus = {**row, "secondary_dx": row["secondary_dx"] + [extra]}
    before, after = _kernel([row, plus], to_table)
    if before[1] == after[1] == "ok" and before[3] == after[3]:
        assert RANK[after[0][3]] >= RANK[before[0][3]]
        if T.mcc[extra] != T.cce.get(row["principal_dx"]):
            assert severity(normalise(plus), T)[0] == 2


@SETTINGS
@given(claims, st.data())
def test_excluded_cc_never_upgrades(to_table, row, data):
    own = T.cce.get(row["principal_dx"])
    same_table = [c for c, t in T.cc.items() if t == own] if own is not None else []
    if not same_table:
        return
    extra = data.draw(st.sampled_from(same_table))
    row = {**row, "secondary_dx": list(row["secondary_dx"] or [])}
    plus = {**row, "secondary_dx": row["secondary_dx"] + [extra]}
    before, after = _kernel([row, plus], to_table)
    if before[1] == after[1] == "ok" and before[3] == after[3]:
        assert after[0] == before[0]


# City MDC orders: each order compiles its own walk programs (MDC skip words, dropped MDCs).
MDC_ORDER = list(T.default_mdc_order)


@settings(max_examples=6, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.permutations(MDC_ORDER), st.integers(0, 6), st.lists(claims, min_size=1, max_size=40))
def test_kernel_equals_reference_any_mdc_order(to_table, order, drop, rows):
    order = order[drop:]             # a city may also leave MDCs out
    got = _kernel(rows, to_table, order)
    assert got == [tuple(group_claim(r, T, order)) for r in rows]


# Extract-shaped input: sex and ages as text, codes in odd spellings (inputs.py).
def _odd_code(code):
    return st.sampled_from([code, code.lower(), f" {code} ", code.replace(".", ""),
                            code.replace("x", "X")])


odd_dx = dx.flatmap(_odd_code)
odd_proc = proc.flatmap(_odd_code)
SEXES = ["1", "2", "M", "F", "男", "女", " f ", "3", "", None]
odd = st.fixed_dictionaries({
    "principal_dx": st.one_of(odd_dx, st.none()),
    "secondary_dx": st.one_of(st.lists(odd_dx, max_size=4), st.none()),
    "procedures": st.one_of(st.lists(odd_proc, max_size=3), st.none()),
    "sex": st.sampled_from(SEXES),
    "age": st.one_of(st.integers(0, 99).map(str), st.sampled_from(["", "x", " 0 ", None])),
    "age_days": st.one_of(st.none(), st.integers(0, 400).map(str)),
    "birth_weight": st.one_of(st.none(), st.integers(0, 4500).map(str), st.just("-1")),
})
TEXT_SCHEMA = pa.schema([("principal_dx", pa.string()), ("secondary_dx", pa.list_(pa.string())),
                         ("procedures", pa.list_(pa.string())), ("sex", pa.string()),
                         ("age", pa.string()), ("age_days", pa.string()),
                         ("birth_weight", pa.string())])


@SETTINGS
@given(st.lists(odd, max_size=25))
def test_kernel_equals_reference_on_text_columns(rows):
    out = group_drg(pa.Table.from_pylist(rows, schema=TEXT_SCHEMA)).to_pylist()
    assert [tuple(o[c] for c in COLUMNS) for o in out] == [tuple(group_claim(r, T)) for r in rows]
