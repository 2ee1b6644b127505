"""The fused ingestion pass (core/_ingest.pyx behind arrow_io.prepare) equals the per-check
code it replaced (tests/ingest_reference.py), on random tables with nulls, negatives, values
beyond int64 fen, unknown domain values, dates outside the policy, duplicate and null claim
ids, in every Arrow type a producer hands over (dictionary, large_string, decimals of each
width, narrow and unsigned integers), chunked and sliced: the same rejects byte for byte (row,
claim id, reason, message, order), the same accepted rows, the same engine values; and the
prepared columns are narrow."""
from __future__ import annotations

import dataclasses
import datetime
import decimal

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest_reference import reference_prepare, text_array as _text  # tests/ is on the path (tests/conftest.py)
from yibao.core import _ingest
from yibao.core.arrow_io import money_fen, prepare
from yibao.core.plan import DATE, INT, MONEY, TEXT, ColumnDecl, Type
from yibao.core.vector import engine_width

EPOCH = datetime.date(1970, 1, 1)
INT64_MAX = 2**63 - 1
# Extra columns the reference policy does not read: an open integer, a second date, a money
# column outside MONEY_COLUMNS (no negative check), open text.
EXTRA = (ColumnDecl("age", Type(INT)), ColumnDecl("admit_date", Type(DATE)),
         ColumnDecl("tcm_amount", Type(MONEY)), ColumnDecl("note", Type(TEXT)))

MONEY_TYPES = [pa.int64(), pa.int32(), pa.int16(), pa.uint32(), pa.decimal128(38, 2),
               pa.decimal128(20, 0), pa.decimal128(12, 1), pa.decimal256(60, 2),
               pa.decimal64(18, 2), pa.decimal32(9, 2), pa.decimal128(25, -3)]
TEXT_TYPES = ["string", "large_string", "dictionary", "string_view"]
LEVEL_TYPES = [pa.int8(), pa.int16(), pa.int64(), pa.uint8(), pa.uint32(), pa.uint64()]


def _fits(t: pa.DataType, v: int) -> bool:
    """Whether the integer ``v`` (fen, or unscaled units of a decimal) fits Arrow type ``t``."""
    if pa.types.is_decimal(t):
        return abs(v) < 10 ** t.precision
    info = np.iinfo(t.to_pandas_dtype())
    return info.min <= v <= info.max


def _money_values(t, fen) -> pa.Array:
    """Amounts in ``fen`` (None for null) as Arrow type ``t`` (integer fen, or decimal yuan
    truncated to the type's scale); an amount the type cannot hold is 0."""
    if not pa.types.is_decimal(t):
        return pa.array([v if v is None or _fits(t, v) else 0 for v in fen], t)
    step = 10 ** (2 - t.scale)
    unscaled = [None if v is None else (abs(v) // step) * (1 if v >= 0 else -1) for v in fen]
    return pa.array([None if v is None else decimal.Decimal(v if _fits(t, v) else 0)
                     .scaleb(-t.scale) for v in unscaled], t)


def rarely_null(strategy):
    """``strategy``, or a null about one time in twelve: a row has several columns, and most
    rows must pass the early checks for the later ones to be reached."""
    return st.integers(0, 11).flatmap(lambda k: st.none() if k == 0 else strategy)


def rarely(common, rare):
    """``common``, or ``rare`` about one time in eight."""
    return st.integers(0, 7).flatmap(lambda k: rare if k == 0 else common)


FEN = rarely_null(rarely(st.integers(0, 10**6), st.one_of(
    st.integers(-3, 0), st.integers(-10**20, 10**20),
    st.sampled_from([INT64_MAX, INT64_MAX // 100, INT64_MAX // 100 + 1, -(INT64_MAX // 100) - 1,
                     -INT64_MAX - 1, 2**64, -2**64, 10**37, -(10**37)]))))


@st.composite
def claim_tables(draw, plan):
    """A table of the reference policy's columns plus EXTRA, each column of a drawn type."""
    n = draw(st.integers(0, 30))
    lo, hi = plan.effective_from, plan.effective_to

    def column(strategy):
        return draw(st.lists(strategy, min_size=n, max_size=n))

    day = rarely_null(rarely(st.integers(lo, hi), st.one_of(
        st.integers(lo - 3, lo + 3), st.integers(hi - 3, hi + 3),
        st.sampled_from([0, -(2**31), 2**31 - 1]))))

    def text(values, rare):
        return _text(draw(st.sampled_from(TEXT_TYPES)),
                     column(rarely_null(rarely(st.sampled_from(values), st.sampled_from(rare)))))

    columns = {
        "claim_id": _text(draw(st.sampled_from(TEXT_TYPES)), _claim_ids(draw, n)),
        "person_id": text(["p1", "p2", "p3"], ["", "p1"]),
        "tier": text(["tier1", "tier2", "tier3"], ["tier9", "", "tier1 ", "TIER1"]),
        "setting": text(["inpatient", "outpatient", "rehab"], ["dental", "rehabx"]),
        "low_income": pa.array(column(rarely_null(st.booleans())), pa.bool_()),
        "hospital_level": _money_values(draw(st.sampled_from(LEVEL_TYPES)), column(rarely_null(
            rarely(st.integers(1, 3), st.sampled_from([-1, 0, 4, 255, 2**40]))))),
        "discharge_date": pa.array(column(day), pa.int32()).cast(pa.date32()),
        "admit_date": pa.array(column(day), pa.int32()).cast(pa.date32()),
        "age": _money_values(draw(st.sampled_from(LEVEL_TYPES)),
                             column(rarely_null(st.integers(-5, 300)))),
        "note": pa.array(column(rarely_null(st.text("xy", max_size=2))), pa.string()),
    }
    amounts = {name: column(FEN) for name in ("total", "in_scope", "self_first", "tcm_amount")}
    for i in range(n):  # mostly total >= in_scope >= self_first, so later checks are reached
        three = [amounts[name][i] for name in ("total", "in_scope", "self_first")]
        if None not in three and draw(st.integers(0, 7)):
            for name, v in zip(("total", "in_scope", "self_first"), sorted(three, reverse=True)):
                amounts[name][i] = v
    for name, fen in amounts.items():
        columns[name] = _money_values(draw(st.sampled_from(MONEY_TYPES)), fen)
    table = pa.table(columns)
    return _rechunk(draw, table)


def _claim_ids(draw, n: int) -> list:
    """Distinct ids, a few of them replaced by a null or by another row's id."""
    ids = [f"c{i:02d}" for i in range(n)]
    for i in range(n):
        kind = draw(st.integers(0, 15))
        if kind == 0:
            ids[i] = None
        elif kind == 1:
            ids[i] = ids[draw(st.integers(0, n - 1))]
    return ids


def _rechunk(draw, table: pa.Table) -> pa.Table:
    """``table`` as several record batches, sliced out of a bigger table (nonzero offsets)."""
    if draw(st.booleans()):
        pad = draw(st.integers(0, min(3, table.num_rows)))
        table = pa.concat_tables([table.slice(0, pad), table, table.slice(0, pad)]) \
            .slice(pad, table.num_rows)
    cuts = sorted(draw(st.lists(st.integers(0, table.num_rows), max_size=3)))
    bounds = [0, *cuts, table.num_rows]
    parts = [table.slice(a, b - a) for a, b in zip(bounds, bounds[1:])]
    return pa.Table.from_batches([b for p in parts for b in p.to_batches()] or [], table.schema) \
        if parts else table


def _with_extra(plan):
    return dataclasses.replace(plan, columns=plan.columns + EXTRA)


def _assert_same(plan, table):
    rejects, rows, columns = reference_prepare(plan, table)
    prep = prepare(plan, table)
    assert prep.rejects == rejects
    assert prep.input_rows().tolist() == rows.tolist()
    assert prep.columns.keys() == columns.keys()
    for name, want in columns.items():
        got = prep.columns[name]
        if isinstance(want, np.ndarray):
            assert engine_width(got).dtype == want.dtype, name
            assert np.array_equal(engine_width(got), want), name
        else:
            got = got.combine_chunks() if isinstance(got, pa.ChunkedArray) else got
            assert got.equals(want), name


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_fused_pass_equals_the_per_check_code(plan, data):
    plan = _with_extra(plan)
    _assert_same(plan, data.draw(claim_tables(plan)))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_a_key_column_is_not_null_checked_in_the_fused_pass_either(family_plan, data):
    """family_id is an accumulator key: a null falls back to the person, no reject."""
    plan = _with_extra(family_plan)
    table = data.draw(claim_tables(plan))
    family = data.draw(st.lists(st.one_of(st.just("f1"), st.none()), min_size=table.num_rows,
                                max_size=table.num_rows))
    _assert_same(plan, table.append_column("family_id", pa.array(family, pa.string())))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_prepared_columns_do_not_depend_on_chunking(plan, data):
    plan = _with_extra(plan)
    table = data.draw(claim_tables(plan))
    one, other = prepare(plan, table.combine_chunks()), prepare(plan, _rechunk(data.draw, table))
    assert one.rejects == other.rejects
    for name, values in one.columns.items():
        assert np.array_equal(values, other.columns[name]) if isinstance(values, np.ndarray) \
            else values.to_pylist() == other.columns[name].to_pylist(), name


@given(st.lists(FEN, max_size=20), st.sampled_from(MONEY_TYPES))
def test_money_is_the_exact_fen_of_the_value(values, t):
    """Against Python integers: fen = unscaled × 10^(2 − scale) where that fits int64 (and
    the unscaled value fits 64 bits), otherwise beyond; null 0 and not beyond."""
    arr = _money_values(t, values)
    fen, beyond = money_fen(arr)
    decimal_type = pa.types.is_decimal(t)
    scale = t.scale if decimal_type else 2
    for i, v in enumerate(arr.to_pylist()):
        if v is None:
            assert (int(fen[i]), bool(beyond[i])) == (0, False)
            continue
        unscaled = int(v.scaleb(scale)) if decimal_type else v
        factor = 10 ** (2 - scale)
        fits = not decimal_type or abs(unscaled) <= INT64_MAX // factor
        assert bool(beyond[i]) == (not fits)
        assert int(fen[i]) == (unscaled * factor if fits else 0)


def test_prepared_columns_are_narrow(plan):
    from yibao.core.generate import generate_claims
    prep = prepare(plan, generate_claims(2_000, seed=3))
    dtypes = {name: v.dtype for name, v in prep.columns.items() if isinstance(v, np.ndarray)}
    assert dtypes["discharge_date"] == np.int32
    assert dtypes["tier"] == dtypes["setting"] == np.int8
    assert dtypes["hospital_level"] == np.int8  # int8 in the claims
    assert dtypes["low_income"] == np.bool_
    assert dtypes["total"] == dtypes["in_scope"] == dtypes["self_first"] == np.int64


def test_first_check_wins_whatever_order_the_passes_run(plan):
    """``first`` keeps the smallest check number a row fails, not the last one written."""
    first = np.full(3, _ingest.NO_CHECK, dtype=np.int16)
    _ingest.null_rows(pa.array([None, "a", None]), first, 7)
    _ingest.null_rows(pa.array([None, None, "b"]), first, 4)
    _ingest.null_rows(pa.array([None, None, None]), first, 9)
    assert first.tolist() == [4, 4, 7]


@pytest.mark.parametrize("claim_id", [pa.array(["5", "5", None, "6"], pa.large_string()),
                                      pa.array(["5", "5", None, "6"]).dictionary_encode()])
def test_duplicate_claim_ids_of_any_type(plan, claim_id):
    from yibao.core.generate import generate_claims
    table = generate_claims(4, seed=1)
    table = table.set_column(table.schema.get_field_index("claim_id"), "claim_id", claim_id)
    reasons = [r[2] for r in sorted(prepare(plan, table).rejects)]
    assert reasons == ["duplicate_claim_id", "duplicate_claim_id", "null_claim_id"]
