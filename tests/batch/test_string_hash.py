"""The one FNV-1a string hash (core/_fnv.pxd) behind the bucket hash and the id tables.

The bucket hash is part of the output format (it fixes the row order of results), so it is
pinned to the published FNV-1a 64 test vectors, on every string layout the shared buffer
reader accepts."""
import pyarrow as pa
import pytest

from yibao.core import _ids
from yibao.core.partition import hash_strings

# FNV-1a 64-bit reference values (Fowler/Noll/Vo test vectors)
VECTORS = {"": 0xcbf29ce484222325, "a": 0xaf63dc4c8601ec8c, "foobar": 0x85944171f73967e8}


@pytest.mark.parametrize("layout", ["string", "large_string", "dictionary", "chunked", "slice"])
def test_bucket_hash_is_fnv1a_64_on_every_layout(layout):
    values = list(VECTORS) + [None]
    arr = pa.array(["pad"] + values)[1:] if layout == "slice" else pa.array(values)
    if layout == "large_string":
        arr = arr.cast(pa.large_string())
    elif layout == "dictionary":
        arr = arr.dictionary_encode()
    elif layout == "chunked":
        arr = pa.chunked_array([arr[:2], arr[2:]])
    assert hash_strings(arr).tolist() == [*VECTORS.values(), 0]


def test_id_tables_read_the_same_layouts():
    arr = pa.array(["x", "y", None, "x"])
    for values in (arr, arr.dictionary_encode(), pa.chunked_array([arr[:1], arr[1:]]),
                   arr.cast(pa.large_string())):
        ids, count = _ids.dense_ids(values)
        assert (ids.tolist(), count) == ([0, 1, -1, 0], 2)
        assert _ids.duplicate_mask(values).tolist() == [True, False, False, True]
