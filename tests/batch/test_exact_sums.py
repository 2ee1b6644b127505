"""Control totals are exact sums of int64 fen (manifest.exact_sum, arrow_io.fen_sum), now
summed a block at a time and, for integer fen without nulls, where the column lies (no fen
copy: on this VM fresh pages are system time). Whatever the blocks, chunks and widths, the
sum is the exact Python sum, beyond int64 included, and the same as the general path's."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings, strategies as st

from yibao.core import manifest
from yibao.core.arrow_io import fen_sum, money_fen

INT64 = st.integers(-(2**63), 2**63 - 1)



@settings(max_examples=200, deadline=None)
@given(values=st.lists(INT64, max_size=60), block=st.integers(1, 9))
def test_exact_sum_is_the_python_sum_whatever_the_blocks(values, block):
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(manifest, "EXACT_SUM_BLOCK", block)
        assert manifest.exact_sum(np.array(values, dtype=np.int64)) == sum(values)


def _general(arr) -> int:
    """fen_sum's general path: fen through money_fen, then the exact sum."""
    fen, beyond = money_fen(arr)
    assert not beyond.any()
    return manifest.exact_sum(fen)


@settings(max_examples=200, deadline=None)
@given(data=st.data(), cuts=st.lists(st.integers(0, 40), max_size=3),
       kind=st.sampled_from([pa.int8(), pa.int16(), pa.int32(), pa.int64()]),
       nulls=st.booleans())
def test_fen_sum_in_place_is_the_general_path(data, cuts, kind, nulls):
    bits = kind.bit_width - 1
    n = data.draw(st.integers(0, 40))
    values = data.draw(st.lists(st.integers(-(2**bits), 2**bits - 1) | (st.none() if nulls
                                                                        else st.nothing()),
                                min_size=n, max_size=n))
    bounds = sorted({0, n, *[min(c, n) for c in cuts]})
    column = pa.chunked_array([pa.array(values[a:b], kind) for a, b in zip(bounds, bounds[1:])]
                              or [pa.array([], kind)], kind)
    expected = sum(v for v in values if v is not None)
    assert fen_sum(column) == expected == _general(column)
    if len(column.chunks) == 1:
        assert fen_sum(column.chunk(0)) == expected
