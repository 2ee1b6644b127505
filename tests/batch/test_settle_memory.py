"""Peak memory of the in-memory settle (issue 14): what ``engine.settle`` holds beside the
results it returns. The payment columns are the kernel's own output buffers (``self_pay`` too,
computed per chunk), the rare flags are made only when needed, and the prepared columns, key
ids and accumulators are let go before the identity columns are gathered, so the peak of
numpy's traced allocations stays well under twice what the results hold."""
from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from yibao.core import engine
from yibao.core.generate import generate_claims


@pytest.fixture(scope="module")
def many_claims():
    return generate_claims(400_000, seed=3)


def test_settle_peak_is_its_results_and_little_more(plan, many_claims, monkeypatch):
    """Measured (tracemalloc, one thread, 400k claims, reference policy): the peak was 2.03×
    what the results hold before issue 14's memory work (identity gathered beside the kernel
    with every prepared column held; self_pay gathered whole at the end; flags, years and the
    input rows made for every batch), 1.66× after."""
    monkeypatch.setenv("YIBAO_THREADS", "1")  # the same allocations in the same order
    engine.settle(plan, many_claims.slice(0, 100))  # lookup tables compiled outside
    tracemalloc.start()
    try:
        batch = engine.settle(plan, many_claims)
        held, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert batch.results.num_rows == many_claims.num_rows
    assert peak <= 1.85 * held, (peak / many_claims.num_rows, held / many_claims.num_rows)


def test_payment_columns_are_the_kernels_buffers(plan, many_claims):
    """No copy between the kernel's outputs and the results: each int64 column of the result
    wraps the buffer the chunks wrote (one chunk, as all of them)."""
    claims = many_claims.slice(0, 5_000)
    prep = engine.prepare(plan, claims)
    order, keys = engine._order_and_keys(plan, prep)
    run = engine.ChunkedSettlement(plan, prep, engine.default_registry(), order, keys)
    run.run()
    results, _ = run.results(engine._identity_in_order(run.prep, order))
    for i, layer in enumerate(plan.layers):
        column = results.column(layer.name).chunk(0)
        assert np.shares_memory(column.to_numpy(), run.out_pay[i])
    assert np.shares_memory(results.column("self_pay").chunk(0).to_numpy(), run.self_pay)
    assert run.missing is None  # nothing missed: no flags were made


def test_date_order_is_counted_into_place():
    """The settlement order of one year of dates (groups of 9 bits) moves row numbers alone:
    traced peak 24 bytes a claim (the order, the ids' 8-byte keys, the packed days), where
    the radix sort of (group, row) entries took 56; the order is Arrow's exact one."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from yibao.core.lower import settlement_order
    n = 200_000
    rng = np.random.default_rng(1)
    ids = pa.array([f"C{k:07d}" for k in rng.permutation(n)])
    days = rng.integers(19_723, 20_088, n).astype(np.int64)
    settlement_order(ids.slice(0, 10), days[:10])
    tracemalloc.start()
    try:
        order = settlement_order(ids, days)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak <= 32 * n, peak / n
    want = pc.sort_indices(pa.table({"d": days, "c": ids}),
                           sort_keys=[("d", "ascending"), ("c", "ascending")])
    assert order.tolist() == want.to_numpy().tolist()
