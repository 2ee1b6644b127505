"""Code -> id mapping (``drg._code_ids``): the hash index agrees with ``pc.index_in`` on
every input shape (nulls, slices, empty and over-long strings, dictionary, large_string)."""
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from hypothesis import given, settings
from hypothesis import strategies as st

from yibao.core.grouping import _drg
from yibao.core.grouping.drg import CODE_NULL, CODE_UNKNOWN, _code_ids
from yibao.core.grouping.tables import load_tables

T = load_tables()
DX = sorted(T.diagnoses)
DX_ARROW = pa.array(DX, pa.string())
DX_INDEX = _drg.build_code_index(DX)
ODD = ["", "A", "A00.000x00", "A00.000x0011", "Ä00.000", "A00.000x001" * 3, "x" * 24, "\0"]


def _expected(values, null_id):
    ids = pc.index_in(values, value_set=DX_ARROW).fill_null(CODE_UNKNOWN).to_numpy()
    ids = ids.astype(np.int32)
    ids[~values.is_valid().to_numpy(zero_copy_only=False)] = null_id
    return ids


codes = st.one_of(st.sampled_from(DX), st.sampled_from(ODD), st.text(max_size=30), st.none())


@settings(max_examples=60, deadline=None)
@given(st.lists(codes, max_size=40), st.integers(0, 5), st.sampled_from([CODE_NULL, CODE_UNKNOWN]))
def test_index_matches_index_in(values, cut, null_id):
    arr = pa.array(values, pa.string())
    arr = arr.slice(min(cut, len(arr)))
    want = _expected(arr, null_id)
    for shape in (arr, arr.cast(pa.large_string()), pc.dictionary_encode(arr)):
        assert _code_ids(shape, DX_ARROW, DX_INDEX, null_id).tolist() == want.tolist()
    # no index (codes longer than 24 bytes in a converted table): pc.index_in fallback
    assert _code_ids(arr, DX_ARROW, None, null_id).tolist() == want.tolist()


def test_every_code_finds_its_id():
    assert _drg.lookup_codes(DX_INDEX, DX_ARROW, CODE_NULL).tolist() == list(range(len(DX)))


def test_long_codes_have_no_index():
    assert _drg.build_code_index(["A" * 25]) is None
    assert _drg.build_code_index([]) is not None
    assert _drg.lookup_codes(_drg.build_code_index([]), pa.array(["A", None]), -2).tolist() \
        == [CODE_UNKNOWN, -2]
