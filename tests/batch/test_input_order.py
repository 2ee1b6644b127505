"""The run's settlement order sorted beside ``prepare`` (issue 14, w16): every input row,
rejected ones included, is sorted into (bucket, date, claim id) order while the rows are
checked, and the rejected rows are then left out. That must be exactly the order of the
prepared rows sorted alone (``engine._run_order``), whatever is rejected (null and duplicate
ids, null dates, negative totals, rows a validator rejects) and however the input is chunked,
and a streamed run using it must give the same results as ``settle_by_bucket``."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from yibao.core import engine
from yibao.core.arrow_io import prepare
from yibao.core.engine import (_input_order, _prepared_order, _run_order, settle_by_bucket,
                               settle_by_bucket_streamed)
from yibao.core.generate import generate_claims
from yibao.core.partition import buckets

BASE = generate_claims(400, seed=5)


def _spoiled(data, n: int) -> pa.Table:
    """``n`` generated claims with drawn rejects: null ids, ids copied from other rows (within
    and across the table's chunks), null dates, negative totals; in a drawn row order and
    split into drawn chunks."""
    t = BASE.slice(0, n)
    ids = t.column("claim_id").to_pylist()
    dates = t.column("discharge_date").to_pylist()
    total = t.column("total").to_pylist()
    for row in data.draw(st.lists(st.integers(0, n - 1), max_size=6), label="null ids"):
        ids[row] = None
    for a, b in data.draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)),
                                   max_size=6), label="copied ids"):
        ids[a] = ids[b]
    for row in data.draw(st.lists(st.integers(0, n - 1), max_size=4), label="null dates"):
        dates[row] = None
    for row in data.draw(st.lists(st.integers(0, n - 1), max_size=4), label="negative"):
        total[row] = -1
    t = (t.set_column(0, "claim_id", pa.array(ids, pa.string()))
         .set_column(t.schema.get_field_index("discharge_date"), "discharge_date",
                     pa.array(dates, pa.date32()))
         .set_column(t.schema.get_field_index("total"), "total", pa.array(total, pa.int64())))
    t = t.take(pa.array(data.draw(st.permutations(range(n)), label="row order")))
    cuts = sorted(set(data.draw(st.lists(st.integers(1, n - 1), max_size=3), label="chunks")))
    pieces = [t.slice(a, b - a) for a, b in zip([0, *cuts], [*cuts, n])]
    return pa.concat_tables(pieces)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), n=st.integers(2, 400))
def test_input_order_less_the_rejects_is_the_prepared_order(plan, data, n):
    claims = _spoiled(data, n)
    bucket = buckets(plan, claims)
    prep = prepare(plan, claims)
    early = _input_order(claims.column("claim_id"), claims.column("discharge_date"), bucket)
    assert sorted(early.tolist()) == list(range(n))  # every input row, once
    got = _prepared_order(early, prep.rows, n)
    assert got.tolist() == _run_order(prep, bucket).tolist()


def test_all_accepted_is_the_input_order_itself(plan):
    claims = BASE.slice(0, 200)
    bucket = buckets(plan, claims)
    early = _input_order(claims.column("claim_id"), claims.column("discharge_date"), bucket)
    prep = prepare(plan, claims)
    assert prep.n == 200 and _prepared_order(early, prep.rows, 200) is early


@pytest.mark.parametrize("seed", [1, 2])
def test_streamed_run_with_the_early_order_is_settle_by_bucket(plan, registry, monkeypatch,
                                                               seed):
    """With chunks of 64 rows the order is sorted on its thread beside ``prepare`` (the
    early path); results, rejects and input rows are settle_by_bucket's."""
    monkeypatch.setattr(engine, "CHUNK_ROWS", 64)
    monkeypatch.setattr(engine, "STREAM_ROWS", 100)
    used = []
    monkeypatch.setattr(engine, "_prepared_order",
                        lambda *a: used.append(1) or _prepared_order(*a))
    claims = generate_claims(1_500, seed=seed)
    ids = claims.column("claim_id").to_pylist()
    ids[10], ids[700], ids[20] = ids[900], None, ids[1_400]  # duplicates, a null id
    claims = claims.set_column(0, "claim_id", pa.array(ids, pa.string()))
    claims = claims.take(pa.array(np.random.default_rng(seed).permutation(claims.num_rows)))
    bucket = buckets(plan, claims)
    pieces = []
    batch = settle_by_bucket_streamed(plan, claims, bucket, pieces.append, registry)
    whole = settle_by_bucket(plan, claims, bucket, registry)
    assert used, "the early order was not used"
    assert pa.concat_tables(pieces).equals(whole.results)
    assert batch.rejects.equals(whole.rejects) and batch.rejects.num_rows == 5
    assert batch.rows.tolist() == whole.rows.tolist()


def test_a_batch_without_the_columns_is_refused_as_before(plan, registry, monkeypatch):
    """The early order is not started for a batch ``prepare`` refuses: its ClaimsError, not
    a KeyError from the order's thread."""
    from yibao.core.arrow_io import ClaimsError
    monkeypatch.setattr(engine, "CHUNK_ROWS", 64)
    claims = generate_claims(200, seed=3).drop_columns(["discharge_date"])
    with pytest.raises(ClaimsError, match="discharge_date"):
        settle_by_bucket_streamed(plan, claims, np.zeros(200, np.int32), lambda piece: None,
                                  registry)
