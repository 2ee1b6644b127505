"""The id tables of ingestion and the sort's common lead (issue 14, m17).

``_ingest.claim_and_key_ids`` hashes ids 8 bytes at a time (core/_idhash.pxd) into
open-addressing tables that compare bytes wherever two stored hashes agree. Real 64-bit hashes
almost never agree for different values, so these tests also run the tables with hashes cut to
a few bits, or to none (``_ingest._collide_for_tests``): every distinct value then collides,
and the null and duplicate claim-id checks and the key numbering must still be exactly a plain
Python dictionary's, over empty strings, non-ASCII ids, values longer than the 16 bytes a key
record keeps, a fallback column, nulls, chunks and sliced arrays.

``_order.common_prefix`` (the bytes the sort keys skip) must be the bytes every id shares."""
from __future__ import annotations

import tracemalloc

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from yibao.core import _ingest, _order

NO = _ingest.NO_CHECK
VALUES = ["", "a", "b", "ab", "abcdefg", "abcdefgh", "abcdefghi", "中", "中文标识",
          "a-very-long-identifier-0001", "a-very-long-identifier-0002",
          "a-very-long-identifier-00021", "P188369", "P1883690"]


@pytest.fixture(params=[(64, False), (3, False), (0, False), (64, True), (0, True)],
                ids=["full-hash", "3-bit-hash", "no-hash", "full-hash-wide", "no-hash-wide"])
def hash_bits(request):
    """Hashes cut to a few bits or none, with the claim ids entered in 32-bit table entries
    (the default below 2**24 rows) or in 64-bit ones ("wide", as beyond)."""
    bits, wide = request.param
    _ingest._collide_for_tests(bits)
    _ingest._wide_claim_table_for_tests(wide)
    yield bits
    _ingest._collide_for_tests(64)
    _ingest._wide_claim_table_for_tests(False)


@st.composite
def chunked(draw, values, n):
    """``values`` (a list, None for null) as a chunked string column cut at drawn places,
    each chunk sliced out of a longer array (a non-zero offset)."""
    cuts = sorted(set(draw(st.lists(st.integers(1, max(n - 1, 1)), max_size=3)))) if n else []
    chunks = []
    for a, b in zip([0, *cuts], [*cuts, n]):
        pad = draw(st.integers(0, 2))
        arr = pa.array(["pad"] * pad + values[a:b] + ["tail"], pa.string())
        chunks.append(arr.slice(pad, b - a))
    return pa.chunked_array(chunks, pa.string())


def _expected_claims(ids: list) -> list:
    """0: null id, 1: an id more than one row has (every copy), NO: neither."""
    counts: dict = {}
    for v in ids:
        if v is not None:
            counts[v] = counts.get(v, 0) + 1
    return [0 if v is None else 1 if counts[v] > 1 else NO for v in ids]


def _expected_keys(own: list, fallback) -> tuple:
    """Ids by first appearance of (kind, value): a fallback value never equals an own one."""
    seen: dict = {}
    out = []
    for k, v in enumerate(own):
        if v is None and fallback is not None and fallback[k] is not None:
            v = ("fallback", fallback[k])
        elif v is not None:
            v = ("own", v)
        out.append(-1 if v is None else seen.setdefault(v, len(seen)))
    return out, len(seen)


@settings(max_examples=80, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # the same cut for all
@given(data=st.data(), n=st.integers(0, 60))
def test_the_tables_are_a_dictionary_whatever_the_hash(hash_bits, data, n):
    value = st.one_of(st.none(), st.sampled_from(VALUES))
    ids = [data.draw(value) for _ in range(n)]
    own = [data.draw(value) for _ in range(n)]
    fallback = [data.draw(value) for _ in range(n)]
    first = np.full(n, NO, dtype=np.int16)
    (key_ids, count), = _ingest.claim_and_key_ids(
        data.draw(chunked(ids, n)), first, 0, 1,
        [(data.draw(chunked(own, n)), data.draw(chunked(fallback, n)))])
    assert first.tolist() == _expected_claims(ids)
    assert (key_ids.tolist(), count) == _expected_keys(own, fallback)


def test_many_rows_of_few_values_collide_into_one_slot_chain(hash_bits):
    """Thousands of rows and a growing key table (its slots placed again) with hashes cut."""
    rng = np.random.default_rng(hash_bits)
    values = [f"v{k}" if k % 7 else f"值{k}" for k in rng.integers(0, 300, 3_000)]
    first = np.full(len(values), NO, dtype=np.int16)
    claims = [f"c{k}" for k in range(len(values))]
    claims[5] = claims[2_999]
    (ids, count), = _ingest.claim_and_key_ids(pa.array(claims), first, 0, 1,
                                              [(pa.array(values), None)])
    assert np.flatnonzero(first == 1).tolist() == [5, 2_999]
    assert (ids.tolist(), count) == _expected_keys(values, None)


@pytest.mark.parametrize("n", [1, 2, 255, 256, 70_000])
def test_duplicates_far_apart_in_a_narrow_table(hash_bits, n):
    """The 32-bit entries number the rows in as few bits as the row count needs (row + 1 up
    to n: 1, 2, 8, 9, 17 bits here), the rest of the entry a tag of the hash's top bits:
    the first and the last row, and rows around a power of two, found as duplicates."""
    claims = [f"C{k:06d}" for k in range(n)]
    twins = {0: n - 1, min(127, n - 1): min(128, n - 1)}
    for a, b in twins.items():
        claims[b] = claims[a]
    first = np.full(n, NO, dtype=np.int16)
    _ingest.claim_ids(pa.array(claims), first, 0, 1)
    assert first.tolist() == _expected_claims(claims)


def test_the_claim_table_of_2m_rows_takes_4_bytes_a_slot():
    """Up to 2**24 rows the claim-id table's entries are 32 bits (m20): its 2**k ≥ 2n slots
    take 4 bytes each (2M claims: 16 MB, where 64-bit entries took 32 MB of fresh pages)."""
    n = 300_000  # 2**20 slots
    claims = pa.array([f"K000C{k:07d}" for k in range(n)])
    first = np.full(n, NO, dtype=np.int16)
    tracemalloc.start()
    try:
        _ingest.claim_ids(claims, first, 0, 1)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * 2**20 + 100_000, f"{peak / 2**20:.1f} MiB"
    assert (first == NO).all()


def _shared_lead(values: list) -> int:
    encoded = [v.encode("utf-8") for v in values]
    common = 0
    while all(len(e) > common and e[common] == encoded[0][common] for e in encoded):
        common += 1
    return common


@settings(max_examples=100, deadline=None)
@given(data=st.data(), values=st.lists(st.sampled_from(
    VALUES + ["C0001", "C0002", "C00011", "C0", "中文", "中國"]), min_size=1, max_size=30))
def test_common_prefix_is_the_bytes_every_id_shares(data, values):
    col = data.draw(chunked(values, len(values)))
    assert _order.common_prefix(col) == _shared_lead(values)
    assert _order.common_prefix(col.combine_chunks()) == _shared_lead(values)


def test_common_prefix_of_nothing_and_refusals():
    assert _order.common_prefix(pa.array([], pa.string())) == 0
    assert _order.common_prefix(pa.chunked_array([], pa.string())) == 0
    with pytest.raises(TypeError):
        _order.common_prefix(pa.array(["a", None]))
