"""The grouping input as extracts hold it: each odd spelling is either normalised to the
canonical claim (and groups exactly like it) or rejected with a reason, on both groupers."""
import pyarrow as pa
import pytest

from yibao.core.grouping import DRG_INPUT_SCHEMA
from yibao.core.grouping.drg import group_drg
from yibao.core.grouping.inputs import normaliser, skeleton
from yibao.core.grouping.reference import group_claim
from yibao.core.grouping.tables import load_tables

T = load_tables()
GOOD = {"principal_dx": "K22.301", "secondary_dx": ["I10.x05"], "procedures": ["96.0800x005"],
        "sex": 2, "age": 88, "age_days": None, "birth_weight": None}
COLUMNS = ("drg", "drg_status", "mdc", "adrg", "stopped_at_mdc", "stopped_at_adrg")


def _column(name, values):
    """An Arrow column of the values' own type (strings stay strings, floats floats)."""
    if name in ("secondary_dx", "procedures"):
        return pa.array(values, pa.list_(pa.string()))
    return pa.array(values)


def run(rows):
    """Kernel results of ``rows``, after checking the reference agrees row by row."""
    table = pa.table({k: _column(k, [r[k] for r in rows]) for k in rows[0]})
    got = [tuple(o[c] for c in COLUMNS) for o in group_drg(table).to_pylist()]
    assert got == [tuple(group_claim(r)) for r in rows]
    return got


WANT = run([GOOD])[0]
assert WANT[1] == "ok"


@pytest.mark.parametrize("sex", ["2", " 2 ", "F", "f", "female", "女", 2, 2.0])
def test_sex_spellings_of_female(sex):
    assert run([{**GOOD, "sex": sex}]) == [WANT]


@pytest.mark.parametrize("sex", ["1", "M", "男", 1])
def test_sex_spellings_of_male_group_as_male(sex):
    assert run([{**GOOD, "sex": sex}]) == run([{**GOOD, "sex": 1}])


@pytest.mark.parametrize("sex", ["3", "X", "", "unknown", 0, 1.5, None])
def test_other_sexes_are_rejected(sex):
    assert run([{**GOOD, "sex": sex}])[0][1] == "invalid_sex"


@pytest.mark.parametrize("age", ["88", " 88 ", 88.0])
def test_age_spellings(age):
    assert run([{**GOOD, "age": age}]) == [WANT]


@pytest.mark.parametrize("field,value,status", [
    ("age", "88 years", "invalid_age"), ("age", 88.5, "invalid_age"), ("age", "-1", "invalid_age"),
    ("age_days", "ten", "invalid_age"), ("birth_weight", -5, "invalid_birth_weight"),
    ("birth_weight", "3.2kg", "invalid_birth_weight")])
def test_values_that_are_not_whole_numbers_are_rejected(field, value, status):
    assert run([{**GOOD, field: value}])[0][1] == status


@pytest.mark.parametrize("pdx", [" K22.301", "K22.301 ", "k22.301", "K22301"])
def test_principal_dx_spellings(pdx):
    assert run([{**GOOD, "principal_dx": pdx}]) == [WANT]


@pytest.mark.parametrize("sdx", ["I10.X05", "i10.x05", "I10.05", " I10.x05 "])
def test_secondary_dx_with_or_without_x(sdx):
    assert run([{**GOOD, "secondary_dx": [sdx]}]) == [WANT]


def test_procedure_spellings():
    for proc in ("96.0800X005", " 96.0800x005", "960800x005"):
        assert run([{**GOOD, "procedures": [proc]}]) == [WANT]


def test_code_without_its_only_extension():
    """86.8600 is not a code; 86.8600x001 is the only code extending it."""
    row = {**GOOD, "procedures": ["86.8600x001"]}
    assert run([{**GOOD, "procedures": ["86.8600"]}]) == run([row])


def test_code_with_several_extensions_is_not_guessed():
    """E14.000 is itself a code and has seven x extensions: an extension that does not
    exist, or a truncated code, is rejected, never mapped to a neighbour."""
    assert normaliser(T.diagnoses)("E14.000") == "E14.000"
    assert run([{**GOOD, "secondary_dx": ["E14.000x999"]}])[0][1] == "invalid_secondary_dx"
    assert run([{**GOOD, "secondary_dx": ["E14.00"]}])[0][1] == "invalid_secondary_dx"
    assert run([{**GOOD, "principal_dx": "K22.3O1"}])[0][1] == "invalid_principal_dx"
    assert run([{**GOOD, "secondary_dx": ["I10"]}])[0][1] == "invalid_secondary_dx"


def test_odd_spellings_mixed_in_one_batch_keep_their_rows():
    rows = [GOOD, {**GOOD, "principal_dx": "k22.301"}, {**GOOD, "principal_dx": "NOPE"},
            {**GOOD, "principal_dx": None}, {**GOOD, "secondary_dx": ["i10.x05", "I10.X05"]}]
    got = run(rows)
    assert [g[1] for g in got] == ["ok", "ok", "invalid_principal_dx", "invalid_principal_dx",
                                   "ok"]
    # a null among the odd spellings stays null whatever its place
    first_null = [{**GOOD, "principal_dx": None}, {**GOOD, "principal_dx": "k22.301"}]
    assert [g[1] for g in run(first_null)] == ["invalid_principal_dx", "ok"]


def test_dictionary_columns_are_normalised():
    table = pa.table({"principal_dx": pa.array(["k22.301", "K22.301", None]).dictionary_encode(),
                      "sex": pa.array(["F", "2", "女"]).dictionary_encode(),
                      "age": pa.array([88, 88, 88], pa.int64())})
    assert group_drg(table).column("drg_status").to_pylist() == ["ok", "ok",
                                                                "invalid_principal_dx"]


def test_schema_is_exported_and_documented():
    assert DRG_INPUT_SCHEMA.names == ["principal_dx", "secondary_dx", "procedures", "sex", "age",
                                      "age_days", "birth_weight", "los", "discharge_status"]
    assert all(f.metadata and f.metadata[b"doc"] for f in DRG_INPUT_SCHEMA)


def test_skeleton_keeps_the_leading_letter():
    assert skeleton(" x59.900X001 ") == "X59900001"


def test_int32_minimum_is_a_value_not_a_null():
    """The kernel's null marker is int32's minimum: an input holding it is a bad age in
    days (invalid_age) on both groupers, not a missing one."""
    table = pa.table({"principal_dx": ["K22.301"], "sex": pa.array([2], pa.int8()),
                      "age": pa.array([88], pa.int32()),
                      "age_days": pa.array([-2**31], pa.int32())})
    row = {**GOOD, "age_days": -2**31}
    assert group_drg(table).column("drg_status").to_pylist() == ["invalid_age"]
    assert group_claim(row).status == "invalid_age"


@pytest.mark.parametrize("typ", [pa.int64(), pa.uint32(), pa.int16(), pa.float64()])
def test_wide_and_float_integer_columns(typ):
    table = pa.table({"principal_dx": ["K22.301", "K22.301"],
                      "sex": pa.array([2, 2], typ), "age": pa.array([88, 88], typ)})
    assert group_drg(table).column("drg").to_pylist() == [WANT[0]] * 2


def test_age_beyond_int32_is_rejected():
    table = pa.table({"principal_dx": ["K22.301"], "sex": pa.array([2], pa.int64()),
                      "age": pa.array([2**40], pa.int64())})
    assert group_drg(table).column("drg_status").to_pylist() == ["invalid_age"]
    assert group_claim({**GOOD, "age": 2**40}).status == "invalid_age"
