"""In-memory ``settle`` sorts every input row into settlement order beside ``prepare``
(issue 14, m17: ``engine._early_order_in_memory``, the streamed run's ``_input_order_beside``
without a bucket) and leaves the rejected rows out afterwards. Results, rejects and the input
row of each result must be those of the order sorted after ``prepare``, whatever is rejected
(null and duplicate ids, null dates, negative totals) and however the input is ordered and
chunked; a batch the early order cannot read (large_string ids, timestamps, dictionaries)
is sorted after ``prepare`` as before."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from yibao.core import engine
from yibao.core.arrow_io import ClaimsError
from yibao.core.generate import generate_claims

BASE = generate_claims(600, seed=11)
EARLY = engine._early_order_in_memory  # (patched below, also across Hypothesis examples)


def _spoiled(data, n: int) -> pa.Table:
    t = BASE.slice(0, n)
    ids = t.column("claim_id").to_pylist()
    dates = t.column("discharge_date").to_pylist()
    total = t.column("total").to_pylist()
    for row in data.draw(st.lists(st.integers(0, n - 1), max_size=5), label="null ids"):
        ids[row] = None
    for a, b in data.draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)),
                                   max_size=5), label="copied ids"):
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
    return pa.concat_tables([t.slice(a, b - a) for a, b in zip([0, *cuts], [*cuts, n])])


def _both(plan, registry, claims, monkeypatch) -> tuple:
    """(settle with the early order, whether it was used; settle sorting after prepare)."""
    used = []
    monkeypatch.setattr(engine, "_early_order_in_memory",
                        lambda *a: (lambda got: used.append(got is not None) or got)(EARLY(*a)))
    with_early = engine.settle(plan, claims, registry)
    monkeypatch.setattr(engine, "_early_order_in_memory", lambda *a: None)
    return with_early, bool(used and used[0]), engine.settle(plan, claims, registry)


def _same(a, b) -> None:
    assert a.results.equals(b.results, check_metadata=True)
    assert a.rejects.equals(b.rejects)
    assert a.input_rows == b.input_rows
    assert np.asarray(a.rows).tolist() == np.asarray(b.rows).tolist()


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=st.data(), n=st.integers(70, 600))
def test_early_order_settles_as_the_order_after_prepare(plan, registry, monkeypatch, data, n):
    monkeypatch.setattr(engine, "CHUNK_ROWS", 64)  # the early order starts from 64 rows
    claims = _spoiled(data, n)
    early, used, late = _both(plan, registry, claims, monkeypatch)
    assert used
    _same(early, late)


@pytest.mark.parametrize("layout", ["large_string ids", "timestamp dates", "dictionary ids",
                                    "twice a column"])
def test_other_layouts_are_sorted_after_prepare(plan, registry, monkeypatch, layout):
    monkeypatch.setattr(engine, "CHUNK_ROWS", 64)
    claims = generate_claims(300, seed=4)
    at = claims.schema.get_field_index
    if layout == "large_string ids":
        claims = claims.set_column(0, "claim_id", claims.column(0).cast(pa.large_string()))
    elif layout == "timestamp dates":
        claims = claims.set_column(at("discharge_date"), "discharge_date",
                                   claims.column("discharge_date").cast(pa.timestamp("ms")))
    elif layout == "dictionary ids":
        claims = claims.set_column(0, "claim_id", claims.column(0).dictionary_encode())
    else:
        claims = claims.append_column("total", claims.column("total"))
        with pytest.raises(ClaimsError, match="more than one column named 'total'"):
            engine.settle(plan, claims, registry)
        assert EARLY(claims, None) is None
        return
    assert EARLY(claims, None) is None
    early, used, late = _both(plan, registry, claims, monkeypatch)
    assert not used
    _same(early, late)
