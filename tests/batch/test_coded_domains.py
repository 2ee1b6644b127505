"""Closed-domain text handed over dictionary-encoded (issue 14, m18): ``prepare`` codes it from
each chunk's dictionary (``_ingest.dictionary_codes``) instead of decoding every row into a
string first, when the caller says nothing else reads the column (``engine._coded_columns``).
The codes and the checks are those of decoding then ``domain_codes``, whatever the chunks'
dictionaries hold (null entries, unused entries, values outside the domain, non-ASCII), the
index type and the slicing; a settlement's results and rejects are those of the decoded
batch."""
from __future__ import annotations

import io

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from yibao.core import _ingest, engine
from yibao.core.arrow_io import prepare
from yibao.core.engine import settle
from yibao.core.generate import generate_claims

NO = _ingest.NO_CHECK
DOMAIN = ("tier1", "tier2", "tier3", "乙类", "")
WORDS = st.sampled_from(list(DOMAIN) + ["tier9", "TIER1", "tier1 ", "院", None])
INDEX_TYPES = [pa.int8(), pa.int16(), pa.int32(), pa.int64()]


@st.composite
def dictionary_chunk(draw):
    """One dictionary-encoded chunk: a dictionary of drawn words (nulls and unused entries
    included, string or large_string), indices of a drawn type (some null), maybe sliced."""
    entries = draw(st.lists(WORDS, min_size=1, max_size=8))
    n = draw(st.integers(0, 30))
    picks = draw(st.lists(st.one_of(st.none(), st.integers(0, len(entries) - 1)),
                          min_size=n + 2, max_size=n + 2))
    value_type = draw(st.sampled_from([pa.string(), pa.large_string()]))
    index_type = draw(st.sampled_from(INDEX_TYPES))
    chunk = pa.DictionaryArray.from_arrays(pa.array(picks, index_type),
                                           pa.array(entries, value_type))
    start = draw(st.integers(0, 2))
    return chunk.slice(start, n)


def decoded(chunks) -> pa.ChunkedArray:
    return pa.chunked_array([c.dictionary_decode().cast(pa.string()) for c in chunks],
                            pa.string())


@settings(max_examples=300, deadline=None)
@given(chunks=st.lists(dictionary_chunk(), min_size=1, max_size=4), data=st.data())
def test_codes_from_dictionaries_are_the_decoded_codes(chunks, data):
    col = pa.chunked_array(chunks, chunks[0].type) if len({c.type for c in chunks}) == 1 \
        else None
    if col is None:  # a chunked array has one type: cast the others' indices and values
        t = chunks[0].type
        col = pa.chunked_array([c.cast(t) for c in chunks], t)
    n = len(col)
    before = np.array(data.draw(st.lists(st.sampled_from([NO, 1, 4, 9]), min_size=n,
                                         max_size=n)), dtype=np.int16)
    want_first, got_first = before.copy(), before.copy()
    want = _ingest.domain_codes(decoded(col.chunks), want_first, 3, 5, DOMAIN)
    got = _ingest.dictionary_codes(col, got_first, 3, 5, DOMAIN)
    assert got.dtype == want.dtype == np.int8
    assert got.tolist() == want.tolist()
    assert got_first.tolist() == want_first.tolist()


def test_a_wide_domain_codes_in_int16():
    domain = tuple(f"code{k}" for k in range(200))
    values = pa.array(["code150", None, "code3", "nope", "code199"]).dictionary_encode()
    first_a, first_b = np.full(5, NO, np.int16), np.full(5, NO, np.int16)
    got = _ingest.dictionary_codes(values, first_a, 0, 1, domain)
    want = _ingest.domain_codes(values.dictionary_decode(), first_b, 0, 1, domain)
    assert got.dtype == np.int16 and got.tolist() == want.tolist() == [150, -1, 3, -1, 199]
    assert first_a.tolist() == first_b.tolist() == [NO, 0, NO, 1, NO]


def _ipc(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()


def _with_odd_tiers(claims: pa.Table) -> pa.Table:
    """Some tiers null, some outside the domain; tier and setting dictionary-encoded in 5
    chunks, each with its own dictionary."""
    tier = claims.column("tier").to_pylist()
    for k in range(0, len(tier), 97):
        tier[k] = None if k % 2 else "tier9"
    claims = claims.set_column(claims.schema.get_field_index("tier"), "tier", pa.array(tier))
    batches = claims.to_batches(max_chunksize=-(-claims.num_rows // 5))
    batches = [pa.record_batch([c.dictionary_encode() if name in ("tier", "setting") else c
                                for name, c in zip(b.schema.names, b.columns)],
                               names=b.schema.names) for b in batches]
    return pa.Table.from_batches(batches)


def test_the_columns_left_coded(plan, registry):
    settled = engine._settled_columns(plan, registry, None, False)
    coded = engine._coded_columns(plan, registry, None, settled)
    assert {"tier", "setting"} <= coded
    assert not coded & {"claim_id", "person_id", "hospital_id", "discharge_date"}
    assert engine._coded_columns(plan, registry, None, None) == set()


def test_prepare_keeps_them_encoded_with_the_same_columns_and_rejects(plan):
    claims = _with_odd_tiers(generate_claims(3_000, seed=4))
    coded = prepare(plan, claims, {"tier", "setting"})
    plain = prepare(plan, claims)
    assert pa.types.is_dictionary(coded.raw.schema.field("tier").type)
    assert pa.types.is_string(plain.raw.schema.field("tier").type)
    assert coded.rejects == plain.rejects and len(plain.rejects) > 0
    assert coded.rows.tolist() == plain.rows.tolist()
    for name, values in plain.columns.items():
        assert np.asarray(coded.columns[name]).tolist() == np.asarray(values).tolist(), name


def test_settle_of_encoded_tiers_is_that_of_decoded_ones(plan, registry):
    claims = _with_odd_tiers(generate_claims(3_000, seed=5))
    plain = claims.set_column(claims.schema.get_field_index("tier"), "tier",
                              claims.column("tier").cast(pa.string()))
    a, b = settle(plan, claims, registry), settle(plan, plain, registry)
    assert _ipc(a.results) == _ipc(b.results)
    assert _ipc(a.rejects) == _ipc(b.rejects) and a.rejects.num_rows > 0


@pytest.mark.parametrize("index_type", INDEX_TYPES)
def test_every_index_width(index_type):
    values = pa.DictionaryArray.from_arrays(pa.array([2, None, 0, 1, 2], index_type),
                                            pa.array(["tier2", None, "tier1"]))
    first = np.full(5, NO, np.int16)
    assert _ingest.dictionary_codes(values, first, 0, 1, DOMAIN).tolist() == [0, -1, 1, -1, 0]
    assert first.tolist() == [NO, 0, NO, 0, NO]
