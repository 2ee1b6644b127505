"""The bucket hash read where the column is (issue 14, m18): ``_hash.hashes_of`` and
``buckets_of`` read each chunk's own buffers (string or large_string; other types cast chunk
by chunk) and give what the FNV-1a of one combined large_string copy gives (``fnv1a`` over
``plain_strings``, the definition the output order is pinned to): chunked, sliced, nulls,
empty strings, non-ASCII, dictionaries, integer ids."""
from __future__ import annotations

import tracemalloc

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from yibao.core import _hash
from yibao.core.partition import NBUCKETS, buckets
from yibao.core.generate import generate_claims

TEXT = st.one_of(st.none(), st.text(alphabet="\x00ab9Z-é院😀", max_size=9))


def fnv_of_one_copy(values) -> np.ndarray:
    """The definition: every value in one contiguous large_string array, hashed."""
    arr = _hash.plain_strings(values, pa.large_string())
    n = len(arr)
    validity, offsets, data = arr.buffers()
    offs = np.frombuffer(offsets, dtype=np.int64)[arr.offset:arr.offset + n + 1]
    raw = np.frombuffer(data, dtype=np.uint8) if data is not None else np.zeros(0, np.uint8)
    valid = np.asarray(arr.is_valid().to_numpy(zero_copy_only=False), dtype=np.uint8)
    return _hash.fnv1a(offs, raw, valid)


@st.composite
def columns(draw):
    parts = draw(st.lists(st.lists(TEXT, max_size=12), min_size=1, max_size=4))
    kind = draw(st.sampled_from(["string", "large_string", "dictionary", "sliced"]))
    chunks = []
    for values in parts:
        arr = pa.array(values, pa.string())
        if kind == "large_string":
            arr = arr.cast(pa.large_string())
        elif kind == "dictionary":
            arr = arr.dictionary_encode()
        elif kind == "sliced":
            arr = pa.array(["pad"] + values + ["tail"], pa.string()).slice(1, len(values))
        chunks.append(arr)
    return pa.chunked_array(chunks, chunks[0].type)


@settings(max_examples=300, deadline=None)
@given(col=columns())
def test_hashes_read_in_place_are_the_one_copy_hashes(col):
    assert _hash.hashes_of(col).tolist() == fnv_of_one_copy(col).tolist()
    want = (fnv_of_one_copy(col) % np.uint64(NBUCKETS)).astype(np.int32)
    got = _hash.buckets_of(col, NBUCKETS)
    assert got.dtype == np.int32 and got.tolist() == want.tolist()


def test_integer_ids_hash_as_their_text():
    ids = pa.chunked_array([pa.array([7, None, -12]), pa.array([2**40])])
    assert _hash.hashes_of(ids).tolist() == fnv_of_one_copy(ids).tolist()


def test_buckets_of_a_batch_are_the_hash_of_its_persons(plan):
    claims = generate_claims(5_000, seed=3)
    claims = pa.Table.from_batches(claims.to_batches(max_chunksize=1_234))
    want = (fnv_of_one_copy(claims.column("person_id")) % np.uint64(NBUCKETS)).astype(np.int32)
    assert buckets(plan, claims).tolist() == want.tolist()


def test_buckets_are_written_without_an_array_of_the_hashes():
    """``buckets_of`` writes each value's bucket as its hash is made (m20): its only array is
    the int32 buckets (4 bytes a row), not a uint64 array of the hashes first (12)."""
    ids = pa.chunked_array([pa.array([f"P{k:07d}" for k in range(100_000)]),
                            pa.array([f"Q{k:07d}" for k in range(50_000)])])
    tracemalloc.start()
    try:
        got = _hash.buckets_of(ids, NBUCKETS)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 5 * len(ids), f"{peak / len(ids):.1f} bytes a row"
    assert got.tolist() == (fnv_of_one_copy(ids) % np.uint64(NBUCKETS)).astype(np.int32).tolist()
    with pytest.raises(ValueError):
        _hash.buckets_of(ids, 0)
