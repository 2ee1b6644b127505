"""In memory, the (date, claim id) order of every input row is sorted beside ``prepare``
(issue 14, m18: ``engine._date_order_beside``), the accepted rows' kept from it
(``_prepared_order``): the results, rejects and input rows are those of the order sorted
after ``prepare`` (one thread, ``YIBAO_THREADS=1``), with rejects of every kind (null and
repeated ids, null dates, which sort as the first day, negative totals) and with none."""
from __future__ import annotations

import io

import numpy as np
import pyarrow as pa

from claim_edits import with_values  # tests/ is on the path (tests/conftest.py)
from yibao.core import timeline
from yibao.core.engine import CHUNK_ROWS, settle
from yibao.core.generate import generate_claims


def _ipc(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()


def _with_rejects(claims: pa.Table) -> pa.Table:
    n = claims.num_rows
    rows = np.random.default_rng(8).permutation(n)
    ids = claims.column("claim_id").to_pylist()
    claims = with_values(claims, "claim_id", {int(r): None for r in rows[:40]})
    claims = with_values(claims, "claim_id", {int(r): ids[s] for r, s in
                                              zip(rows[40:80], rows[80:120])})
    claims = with_values(claims, "discharge_date", {int(r): None for r in rows[120:160]})
    claims = with_values(claims, "total", {int(r): -1 for r in rows[160:200]})
    return pa.Table.from_batches(claims.to_batches(max_chunksize=n // 7 + 1))


def _same(plan, registry, claims, monkeypatch):
    beside = settle(plan, claims, registry)
    monkeypatch.setenv("YIBAO_THREADS", "1")
    after = settle(plan, claims, registry)
    monkeypatch.delenv("YIBAO_THREADS")
    assert _ipc(beside.results) == _ipc(after.results)
    assert _ipc(beside.rejects) == _ipc(after.rejects)
    assert np.array_equal(beside.rows, after.rows)
    return beside


def test_order_sorted_beside_prepare_settles_the_same(plan, registry, monkeypatch):
    claims = generate_claims(CHUNK_ROWS + 5_000, seed=12)
    assert _same(plan, registry, claims, monkeypatch).rejects.num_rows == 0
    rejected = _same(plan, registry, _with_rejects(claims), monkeypatch)
    assert rejected.rejects.num_rows >= 200


def test_the_order_is_sorted_on_its_own_thread(plan, registry, monkeypatch):
    claims = generate_claims(CHUNK_ROWS + 10, seed=13)
    monkeypatch.setenv("YIBAO_TIMELINE", "1")
    timeline._events.clear()
    try:
        settle(plan, claims, registry)
        stages = {(thread.split("_")[0], name) for thread, name, *_ in timeline._events}
    finally:
        timeline._events.clear()
    assert ("yibao-input order", "input order") in stages
