"""An integer coefficient key (a hospital level) numbered by value - min
(``compute._small_int_codes``) gives every claim the same key text as hashing the column
does (``_encoded`` then a cast to text): nulls, several chunks, negative values, one wide
column (left to the hash), uint64 values past int64 (left to the hash) and an all-null one."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from yibao.core.points import compute

COLUMNS = {
    "levels": pa.chunked_array([pa.array([3, 1, None, 2], pa.int8()), pa.array([1, 1], pa.int8())]),
    "negative": pa.chunked_array([pa.array([-2, 0, 7, None], pa.int32())]),
    "wide": pa.chunked_array([pa.array([5, 10 ** 6], pa.int64())]),
    "all null": pa.chunked_array([pa.array([None, None], pa.int16())]),
    "empty chunks": pa.chunked_array([pa.array([], pa.int8()), pa.array([2, 2], pa.int8())]),
    "uint64 past int64": pa.chunked_array([pa.array([2 ** 63, 2 ** 63 + 1], pa.uint64())]),
}


def _keys(idx, dictionary) -> list:
    texts = dictionary.to_pylist() + [None]
    return [texts[i] for i in np.asarray(idx)]


@pytest.mark.parametrize("name", sorted(COLUMNS))
def test_small_integer_keys_equal_the_hashed_ones(name):
    column = COLUMNS[name]
    claims = pa.table({"k": column})
    idx, dictionary = compute._encoded(column.combine_chunks())
    assert _keys(*compute._encoded_as_text(claims, "k")) == \
        _keys(idx, dictionary.cast(pa.string()))


def test_small_integer_keys_skip_the_hash():
    column = COLUMNS["levels"]
    idx, dictionary = compute._small_int_codes(column)
    assert dictionary.to_pylist() == ["1", "2", "3"] and list(idx) == [2, 0, 3, 1, 0, 0]
    assert compute._small_int_codes(COLUMNS["wide"]) is None
