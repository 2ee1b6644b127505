"""The id hash (core/_ids.pyx) against Python's own idea of equal strings."""
from collections import Counter

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from yibao.core import _ids

VALUES = st.lists(st.one_of(st.none(), st.text(max_size=4), st.sampled_from(["", "a", "é", "\x00"])),
                  max_size=60)


@settings(max_examples=200, deadline=None)
@given(values=VALUES, start=st.integers(0, 10), large=st.booleans())
def test_dense_ids_and_duplicates_match_python(values, start, large):
    arr = pa.array(values, pa.large_string() if large else pa.string()).slice(start)
    values = values[start:]
    ids, count = _ids.dense_ids(arr)
    seen = {}
    for v, i in zip(values, ids.tolist()):
        if v is None:
            assert i == -1
        else:
            assert seen.setdefault(v, i) == i  # equal strings, equal ids
    assert sorted(seen.values()) == list(range(count))  # distinct strings, distinct ids
    counts = Counter(v for v in values if v is not None)
    assert _ids.duplicate_mask(arr).tolist() == [v is not None and counts[v] > 1 for v in values]


def test_chunked_input_is_one_id_space():
    arr = pa.chunked_array([pa.array(["a", "b"]), pa.array(["b", "c"])])
    ids, count = _ids.dense_ids(arr)
    assert ids.tolist() == [0, 1, 1, 2] and count == 3
