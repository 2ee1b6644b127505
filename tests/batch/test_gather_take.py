"""The chunk builds' gather of prepared columns into the settlement order (core/_gather.pyx
``take``, issue 14, w17): exactly numpy's fancy indexing (values, dtype, a fresh contiguous
array) for every width it handles in C, for any rows (repeated, unsorted, empty), and numpy's
own indexing for what it does not (objects, strided views); the settle path that uses it gives
the reference evaluator's results whatever the chunk size."""
from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from yibao.core import reference
from yibao.core._gather import take
from yibao.core.generate import generate_claims

DTYPES = [np.int8, np.uint8, np.bool_, np.int16, np.int32, np.uint32, np.int64, np.uint64,
          np.float64, "datetime64[D]"]


@st.composite
def values_and_rows(draw):
    dtype = np.dtype(draw(st.sampled_from(DTYPES)))
    n = draw(st.integers(1, 300))
    if dtype.kind == "M":
        values = np.arange(n).astype(dtype) + draw(st.integers(0, 20_000))
    else:
        values = draw(hnp.arrays(dtype, n))
    rows = draw(hnp.arrays(np.int64, st.integers(0, 400), elements=st.integers(0, n - 1)))
    return values, rows


@settings(max_examples=300, deadline=None)
@given(values_and_rows())
def test_take_is_numpy_fancy_indexing(case):
    values, rows = case
    got, want = take(values, rows), values[rows]
    assert got.dtype == want.dtype and got.shape == want.shape
    assert got.flags.c_contiguous and not np.shares_memory(got, values)
    assert got.tobytes() == want.tobytes()  # NaNs and -0.0 compared bit for bit


def test_take_of_extreme_int64_values_and_last_row():
    values = np.array([np.iinfo(np.int64).min, -1, 0, np.iinfo(np.int64).max], np.int64)
    rows = np.array([3, 0, 3, 1, 2], np.int64)
    assert take(values, rows).tolist() == values[rows].tolist()


def test_take_of_rows_in_another_integer_type():
    values = np.arange(10, dtype=np.int32) * 7
    rows = np.array([9, 0, 4], dtype=np.int32)
    assert take(values, rows).tolist() == [63, 0, 28]


def test_take_leaves_what_it_cannot_gather_in_c_to_numpy():
    objects = np.array(["a", None, "c"], dtype=object)
    assert take(objects, np.array([2, 0])).tolist() == ["c", "a"]
    strided = np.arange(20, dtype=np.int64)[::2]  # not contiguous
    assert take(strided, np.array([3, 1])).tolist() == [6, 2]
    wide = np.array([1 + 2j, 3 + 4j])  # 16-byte items
    assert take(wide, np.array([1])).tolist() == [3 + 4j]


def test_take_of_no_rows_is_empty_of_the_dtype():
    got = take(np.arange(5, dtype=np.int16), np.zeros(0, np.int64))
    assert got.dtype == np.int16 and len(got) == 0


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10_000), n=st.integers(0, 600), chunk=st.integers(1, 700))
def test_chunked_settlement_with_compiled_gathers_equals_reference(plan, seed, n, chunk,
                                                                   monkeypatch):
    """The chunk builds gather with ``take``: any chunk size (one row, a few, more than the
    batch) gives the reference evaluator's results."""
    from yibao.core import engine
    claims = generate_claims(n, seed=seed)
    monkeypatch.setattr(engine, "CHUNK_ROWS", chunk)
    got = engine.settle(plan, claims)
    want = reference.settle(plan, claims)
    assert got.results.equals(want.results)
    assert got.rejects.equals(want.rejects)


def test_build_gathers_through_take(plan, monkeypatch):
    """The build reads the prepared columns and key ids through ``_gather.take`` (the test
    above would pass on numpy's indexing too: this one pins the compiled path)."""
    from yibao.core import engine
    calls = []
    monkeypatch.setattr(engine, "take", lambda v, r: calls.append(v.dtype) or v[r])
    engine.settle(plan, generate_claims(200, seed=1))
    assert np.dtype(np.int64) in calls and len(calls) >= 3
