"""Result assembly (issue 14): claim_id and the identity columns are gathered once (strings in
C, equal to Arrow's take): in memory after the kernel, once the prepared columns it read are let
go (peak memory), in a run's piece beside the kernel (wall time); two threads and one
(``YIBAO_THREADS=1``) give the same bytes, in date order and in a run's bucket order, with rows
left out of the results or not."""
from __future__ import annotations

import threading

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from yibao.core import engine
from yibao.core._order import gather
from yibao.core.partition import buckets
from yibao.core.piece import bucket_plan
from yibao.dsl.compiler import compile_text


@pytest.fixture
def small_chunks(monkeypatch):
    """Chunks (and the threaded paths) from 500 rows on, so a small batch takes them."""
    monkeypatch.setattr(engine, "CHUNK_ROWS", 500)


@pytest.fixture
def gather_threads(monkeypatch) -> list:
    """The name of the thread each identity gather ran on, and the prepared columns still
    held when it ran."""
    names, gather = [], engine._identity_in_order

    def recorded(prep, order):
        names.append((threading.current_thread().name, sorted(prep.columns)))
        return gather(prep, order)
    monkeypatch.setattr(engine, "_identity_in_order", recorded)
    return names


def settled(monkeypatch, threads: str, fn, *args):
    monkeypatch.setenv("YIBAO_THREADS", threads)
    return fn(*args)


@pytest.mark.parametrize("by_bucket", [False, True], ids=["date order", "bucket order"])
def test_identity_gathered_after_the_kernel_is_the_one_thread_result(
        plan, claims, registry, small_chunks, gather_threads, monkeypatch, by_bucket):
    args = (plan, claims, np.asarray(buckets(bucket_plan(plan), claims)), registry) \
        if by_bucket else (plan, claims, registry)
    fn = engine.settle_by_bucket if by_bucket else engine.settle
    two = settled(monkeypatch, "2", fn, *args)
    one = settled(monkeypatch, "1", fn, *args)
    if by_bucket:  # a run's piece: beside the kernel (wall time), with the columns it reads
        assert gather_threads[0][0].startswith("yibao-identity")
        assert gather_threads[1][0] == threading.main_thread().name
        assert "in_scope" in gather_threads[0][1]
    else:  # in memory: after the run let go of every prepared column (peak memory)
        assert gather_threads == [(threading.main_thread().name, [])] * 2
    assert two.results.equals(one.results) and two.rejects.equals(one.rejects)
    assert two.results.schema.equals(one.results.schema, check_metadata=True)
    assert np.array_equal(two.rows, one.rows)
    assert two.results.column_names[:4] == ["claim_id", "person_id", "hospital_id",
                                            "discharge_date"]
    assert two.results.num_rows == claims.num_rows


POLICY = """policy "test" {
  region "test"
  effective 2024-01-01 to 2024-12-31
}
table ratio_by_hospital (hospital_id) -> ratio {
  h1: 90%
  h2: 80%
}
layer basic "基本" {
  base in_scope - self_first
  deductible 100 yuan per person per year
  ratio ratio_by_hospital[hospital_id]
}
"""


def test_rows_left_out_after_the_kernel_leave_their_identity_out(
        tmp_path, small_chunks, gather_threads, monkeypatch):
    """A claim whose hospital has no table row is rejected after the kernel ran (rows of the
    gathered identity are dropped with it): the threaded results are the one-thread ones,
    and every settled row carries its own person, hospital and date."""
    plan = compile_text(POLICY, "test.yb", tmp_path)
    n = 2_000
    rng = np.random.default_rng(5)
    claims = pa.table({
        "claim_id": pa.array([f"C{k:05d}" for k in rng.permutation(n)]),
        "person_id": pa.array([f"P{k % 300}" for k in range(n)]),
        "hospital_id": pa.array(rng.choice(["h1", "h2", "h9"], n)),
        "discharge_date": pa.array(rng.integers(19_723, 20_088, n).astype("datetime64[D]")),
        "total": pa.array(rng.integers(0, 500_000, n)),
        "in_scope": pa.array(np.zeros(n, dtype=np.int64)),
        "self_first": pa.array(np.zeros(n, dtype=np.int64)),
    })
    two = settled(monkeypatch, "2", engine.settle, plan, claims)
    one = settled(monkeypatch, "1", engine.settle, plan, claims)
    assert len(gather_threads) == 2
    assert two.results.equals(one.results) and two.rejects.equals(one.rejects)
    missed = set(two.rejects.column("claim_id").to_pylist())
    assert missed == {c for c, h in zip(claims.column("claim_id").to_pylist(),
                                        claims.column("hospital_id").to_pylist()) if h == "h9"}
    settled_rows = claims.take(pa.array(two.rows))
    for name in ("claim_id", "person_id", "hospital_id", "discharge_date"):
        assert two.results.column(name).equals(settled_rows.column(name))


@settings(max_examples=200, deadline=None)
@given(values=st.lists(st.one_of(st.none(), st.text(alphabet="a9é院😀\x00", max_size=6)),
                       max_size=40),
       cut=st.integers(0, 5), chunks=st.integers(1, 3), data=st.data())
def test_gather_is_arrows_take(values, cut, chunks, data):
    """Strings gathered in C (_order.gather) are Arrow's take, for slices (offsets not from
    0), chunked arrays, empty strings, repeated rows; with nulls Arrow's take does it."""
    strings = pa.array(values, pa.string()).slice(min(cut, len(values)))
    n = len(strings)
    order = np.array(data.draw(st.lists(st.integers(0, max(n - 1, 0)),
                                        max_size=50 if n else 0)), dtype=np.int64)
    want = strings.take(pa.array(order, pa.int64()))
    got = gather(strings, order)
    assert got.equals(want) and got.type == pa.string()
    bounds = sorted({0, n, *data.draw(st.lists(st.integers(0, n), max_size=chunks - 1))})
    chunked = pa.chunked_array([strings.slice(a, b - a) for a, b in zip(bounds, bounds[1:])],
                               pa.string())
    assert gather(chunked, order).equals(want)
