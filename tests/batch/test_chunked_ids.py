"""Claim ids read where the batch holds them (issue 14, peak memory at 5M claims): ``prepare``
keeps the claim-id column as the input's chunks, never a combined copy, and holds no row
numbers when every row is accepted; the settlement order (core/_order.pyx ``sort_rows``), the
results' string gathers and the rejects read the chunks in place. Results, rejects and the
input row of each result are those of the same batch in one chunk, whatever the chunking
(empty chunks, slices with offsets, ids equal on their 8 sort-key bytes in different chunks,
duplicate and null ids across chunks), and the kernel agrees with the reference on them."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from yibao.core import reference
from yibao.core._order import gather
from yibao.core.arrow_io import normal_table, prepare
from yibao.core.engine import settle
from yibao.core.generate import generate_claims
from yibao.core.lower import settlement_order

# ids sharing a lead, equal on the 8 bytes after it (the sort compares their bytes), prefixes
# of one another, non-ASCII
IDS = st.builds(lambda lead, tail: lead + tail,
                st.sampled_from(["", "C", "H-2024-", "ABCDEFGHIJKL", "院"]),
                st.text(alphabet="019Zé院", max_size=10))


def chunked(table: pa.Table, bounds: list, empty: bool) -> pa.Table:
    """``table`` as record batches cut at ``bounds``, every other one a slice of the whole
    (offsets not from 0), the others copies with buffers of their own (so that reading a row
    in the wrong chunk reads another string), with an empty batch between them when
    ``empty``."""
    whole = table.combine_chunks()
    nothing = pa.record_batch([pa.array([], f.type) for f in whole.schema], schema=whole.schema)
    edges = sorted({0, table.num_rows, *bounds})
    batches = []
    for k, (a, b) in enumerate(zip(edges, edges[1:])):
        piece = whole.slice(a, b - a).to_batches()
        batches.extend(piece if k % 2 else [p.take(pa.array(np.arange(p.num_rows)))
                                             for p in piece])
        if empty:
            batches.append(nothing)
    return pa.Table.from_batches(batches, whole.schema)


def exact(claim_id, day, lead=None) -> list:
    """Arrow's stable sort on (lead, day, claim id): the definition."""
    cols = {} if lead is None else {"l": pa.array(lead, pa.int64())}
    cols.update(d=pa.array(day, pa.int64()), c=claim_id)
    keys = [(k, "ascending") for k in cols]
    return pc.sort_indices(pa.table(cols), sort_keys=keys).to_numpy().tolist()


# -- prepare ----------------------------------------------------------------------------------

def test_prepare_of_many_chunks_allocates_no_claim_id_copy(plan):
    """The accepted claim ids are the input's own chunks: ``prepare`` allocates no Arrow
    memory for them (main combined them: 10 bytes a claim here, 0.17x of the input columns at
    5M claims, held through the kernel)."""
    claims = normal_table(pa.Table.from_batches(
        generate_claims(50_000, seed=3).to_batches(max_chunksize=3_000)))
    assert claims.column("claim_id").num_chunks > 10
    prepare(plan, claims.slice(0, 10))  # one-off set-up outside the count
    before = pa.total_allocated_bytes()
    prep = prepare(plan, claims)
    assert pa.total_allocated_bytes() - before < 1_000, pa.total_allocated_bytes() - before
    assert prep.claim_id.num_chunks == claims.column("claim_id").num_chunks
    assert prep.claim_id.equals(claims.column("claim_id"))


def test_every_row_accepted_holds_no_row_numbers(plan):
    """No ``arange`` of the input rows is held when every row is accepted (0.11x of the
    input columns at 5M claims); ``input_rows`` gives them either way."""
    claims = generate_claims(1_000, seed=4)
    prep = prepare(plan, claims)
    assert prep.rows is None
    assert prep.input_rows().tolist() == list(range(1_000))
    assert prep.input_rows(np.array([7, 3])).tolist() == [7, 3]
    total = claims.column("total").to_pylist()
    total[5] = -1
    some = prepare(plan, claims.set_column(claims.column_names.index("total"), "total",
                                           pa.array(total, claims.schema.field("total").type)))
    assert some.rows is not None and 5 not in some.rows.tolist()
    assert some.input_rows(np.array([4, 5])).tolist() == [4, 6]


# -- the order and the gathers, chunk by chunk ------------------------------------------------

@settings(max_examples=200, deadline=None)
@given(ids=st.lists(IDS, min_size=2, max_size=80, unique=True), data=st.data(),
       led=st.booleans(), empty=st.booleans())
def test_order_of_chunked_ids_is_the_exact_sort(ids, data, led, empty):
    n = len(ids)
    order = np.random.default_rng(n).permutation(n)
    claim_id = pa.array([ids[i] for i in order], pa.string())
    day = np.array(data.draw(st.lists(st.integers(19_700, 19_701), min_size=n, max_size=n)),
                   dtype=np.int64)
    lead = np.array(data.draw(st.lists(st.integers(0, 70_000), min_size=n, max_size=n)),
                    dtype=np.int64) if led else None  # wide leads: the radix path
    bounds = data.draw(st.lists(st.integers(0, n), max_size=6))
    pieces = chunked(pa.table({"c": claim_id}), bounds, empty).column("c")
    assert settlement_order(pieces, day, lead).tolist() == exact(claim_id, day, lead)
    at = np.array(data.draw(st.lists(st.integers(0, n - 1), max_size=60)), dtype=np.int64)
    assert gather(pieces, at).equals(claim_id.take(pa.array(at, pa.int64())))


# -- settle: one chunk or many ----------------------------------------------------------------

def claims_with_ids(n: int, seed: int, ids: list, negative: list) -> pa.Table:
    """``n`` generated claims with ``ids`` (cycled: repeats are duplicates; None is a null
    id) and a negative total at the rows of ``negative``."""
    claims = generate_claims(n, seed=seed)
    claim_id = pa.array([ids[k % len(ids)] for k in range(n)], pa.string())
    total = claims.column("total").to_pylist()
    for k in negative:
        total[k % n] = -1 - (total[k % n] or 0)
    claims = claims.set_column(claims.column_names.index("claim_id"), "claim_id", claim_id)
    return claims.set_column(claims.column_names.index("total"), "total",
                             pa.array(total, claims.schema.field("total").type))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ids=st.lists(st.one_of(IDS, st.none()), min_size=1, max_size=150),
       n=st.integers(1, 150), seed=st.integers(0, 3), data=st.data(), empty=st.booleans())
def test_settle_of_many_chunks_is_that_of_one(plan, ids, n, seed, data, empty):
    negative = data.draw(st.lists(st.integers(0, 149), max_size=3))
    one = claims_with_ids(n, seed, ids, negative).combine_chunks()
    many = chunked(one, data.draw(st.lists(st.integers(0, n), max_size=8)), empty)
    want, got = settle(plan, one), settle(plan, many)
    assert got.results.equals(want.results)
    assert got.results.schema.equals(want.results.schema, check_metadata=True)
    assert got.rejects.equals(want.rejects)
    assert np.asarray(got.rows).tolist() == np.asarray(want.rows).tolist()
    assert got.results.num_rows + got.rejects.num_rows == n
    oracle = reference.settle(plan, many)
    assert oracle.results.equals(got.results) and oracle.rejects.equals(got.rejects)


def test_many_rows_in_chunks_of_every_size():
    """Past 4,096 rows a row's chunk is found from the table of every 2**shift-th row and
    steps past the chunk ends in between (several, for chunks of a row or two): the order
    and the gather equal those of the ids in one chunk."""
    rng = np.random.default_rng(2)
    n = 60_000
    claim_id = pa.array([f"K{k % 7}ABCDEFGH{k:06d}" for k in rng.permutation(n)],
                        pa.string())  # equal on their 8 sort-key bytes: compared as bytes
    sizes = np.concatenate([rng.integers(1, 4, 2_000), rng.integers(100, 9_000, 40)])
    bounds = np.cumsum(sizes)[np.cumsum(sizes) < n].tolist()
    pieces = chunked(pa.table({"c": claim_id}), bounds, empty=False).column("c")
    assert pieces.num_chunks > 1_000
    day = rng.integers(19_700, 19_705, n).astype(np.int64)
    day[rng.integers(0, n, n // 3)] = 19_700  # many claims of one day: the radix path
    assert settlement_order(pieces, day).tolist() == exact(claim_id, day)
    at = rng.integers(0, n, 80_000)
    assert gather(pieces, at).equals(claim_id.take(pa.array(at)))
