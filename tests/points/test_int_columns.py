"""``compute.ints`` reads an int64 column of one chunk without nulls in place (issue 14,
p18: scoring and the year's sums copied ``total`` and the patients' payments, 8 MB each at
1M claims, for arrays they only read); nulls still become 0, other widths and dates widen."""
from __future__ import annotations

import datetime

import numpy as np
import pyarrow as pa

from yibao.core.points.compute import ints


def test_an_int64_column_without_nulls_is_read_in_place():
    total = pa.array(np.arange(1_000, dtype=np.int64))
    got = ints(pa.table({"total": total}), "total")
    assert got.dtype == np.int64 and got.tolist() == list(range(1_000))
    assert np.shares_memory(got, np.frombuffer(total.buffers()[1], np.int64))


def test_nulls_narrow_integers_dates_and_chunks():
    table = pa.table({
        "a": pa.chunked_array([pa.array([1, None], pa.int64()), pa.array([3], pa.int64())]),
        "b": pa.chunked_array([pa.array([1, -2, None], pa.int8())]),
        "d": pa.chunked_array([pa.array([datetime.date(1970, 1, 2), None,
                                         datetime.date(1969, 12, 31)])])})
    assert ints(table, "a").tolist() == [1, 0, 3]
    assert ints(table, "b").tolist() == [1, -2, 0] and ints(table, "b").dtype == np.int64
    assert ints(table, "d").tolist() == [1, 0, -1]
    empty = pa.table({"a": pa.chunked_array([], pa.int64())})
    assert ints(empty, "a").tolist() == [] and ints(empty, "a").dtype == np.int64
