"""In memory (``engine.settle``) chunks are built by two threads at once beside the kernel,
and the identity columns gathered two at a time after it (issue 14, m19): the results, the
rejects and the input rows are those of one thread (``YIBAO_THREADS=1``) and of one builder,
lookup misses and rows whose amounts leave int64 included."""
from __future__ import annotations

import threading
import time

import numpy as np
import pyarrow as pa
import pytest

from yibao.core import engine
from yibao.dsl.compiler import compile_text


@pytest.fixture
def small_chunks(monkeypatch):
    """Chunks (and the threaded paths) from 500 rows on, so a small batch takes them."""
    monkeypatch.setattr(engine, "CHUNK_ROWS", 500)


@pytest.fixture
def builds_at_once(monkeypatch) -> list:
    """The most chunk builds in progress at once, per run (each build held 20 ms so builds
    that may overlap do)."""
    peaks, lock, now = [0], threading.Lock(), [0]
    build = engine.ChunkedSettlement.build

    def slow_build(self, start, chunk_rows):
        with lock:
            now[0] += 1
            peaks[-1] = max(peaks[-1], now[0])
        try:
            time.sleep(0.02)
            return build(self, start, chunk_rows)
        finally:
            with lock:
                now[0] -= 1
    monkeypatch.setattr(engine.ChunkedSettlement, "build", slow_build)
    return peaks


def settled(monkeypatch, threads: str, builders: int, *args):
    monkeypatch.setenv("YIBAO_THREADS", threads)
    monkeypatch.setattr(engine, "IN_MEMORY_BUILDERS", builders)
    return engine.settle(*args)


def same(a, b) -> None:
    assert a.results.equals(b.results) and a.rejects.equals(b.rejects)
    assert a.results.schema.equals(b.results.schema, check_metadata=True)
    assert (a.rows is None and b.rows is None) or np.array_equal(a.rows, b.rows)


def test_two_builders_build_at_once_and_settle_as_one(plan, claims, registry, small_chunks,
                                                       builds_at_once, monkeypatch):
    two = settled(monkeypatch, "2", 2, plan, claims, registry)
    assert builds_at_once[-1] == 2  # the old loop built one chunk ahead, never two
    builds_at_once.append(0)
    one_builder = settled(monkeypatch, "2", 1, plan, claims, registry)
    assert builds_at_once[-1] == 1
    builds_at_once.append(0)
    one_thread = settled(monkeypatch, "1", 2, plan, claims, registry)
    assert builds_at_once[-1] == 1
    same(two, one_builder)
    same(two, one_thread)
    assert two.results.num_rows == claims.num_rows


def test_identity_columns_gathered_on_two_threads(plan, claims, registry, small_chunks,
                                                  monkeypatch):
    """Each identity column is gathered once, on the pool's threads, into the one-thread
    columns."""
    names, gather = [], engine.gather

    def recorded(column, order):
        names.append(threading.current_thread().name)
        return gather(column, order)
    monkeypatch.setattr(engine, "gather", recorded)
    two = settled(monkeypatch, "2", 2, plan, claims, registry)
    assert len(names) == 4 and all(n.startswith("yibao-identity") for n in names)
    names.clear()
    one = settled(monkeypatch, "1", 2, plan, claims, registry)
    assert names == [threading.main_thread().name] * 4
    same(two, one)


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


def test_misses_and_overflow_with_two_builders(tmp_path, small_chunks, monkeypatch):
    """Lookup misses (a hospital without a row, in several chunks: the builders share the
    tables the first chunk filled) and a base leaving int64 are rejected as with one
    thread."""
    plan = compile_text(POLICY, "test.yb", tmp_path)
    n = 4_000
    rng = np.random.default_rng(9)
    in_scope = rng.integers(0, 500_000, n)
    self_first = np.zeros(n, dtype=np.int64)
    in_scope[17], self_first[17] = 2**62, -(2**62)  # in_scope - self_first leaves int64
    claims = pa.table({
        "claim_id": pa.array([f"C{k:05d}" for k in rng.permutation(n)]),
        "person_id": pa.array([f"P{k % 300}" for k in range(n)]),
        "hospital_id": pa.array(rng.choice(["h1", "h2", "h9"], n)),
        "discharge_date": pa.array(rng.integers(19_723, 20_088, n).astype("datetime64[D]")),
        "total": pa.array(np.maximum(in_scope, 0)),
        "in_scope": pa.array(in_scope),
        "self_first": pa.array(self_first),
    })
    two = settled(monkeypatch, "2", 2, plan, claims)
    one = settled(monkeypatch, "1", 1, plan, claims)
    same(two, one)
    rejected = set(two.rejects.column("claim_id").to_pylist())
    assert claims.column("claim_id")[17].as_py() in rejected
    assert len(rejected) > 1 and two.results.num_rows + len(rejected) == n
