"""Results written while the claims settle (issue 14, w15): an in-memory run hands each
settled piece of the results to the writer thread (engine.settle_by_bucket_streamed) instead
of waiting for all of them. The pieces must be the results of settle_by_bucket row for row
(same rejects, same input rows), the file the same bytes as when written whole, a claim paid
more than its total must stop the run with the same message, and a failing writer or engine
must lose nothing silently and leave no half file."""
from __future__ import annotations

import threading

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from yibao.core import engine, manifest
from yibao.core.engine import SettlementError, settle_by_bucket, settle_by_bucket_streamed
from yibao.core.generate import write_claims
from yibao.core.partition import buckets
from yibao.core.runner import run_settle
from yibao.dsl.compiler import compile_text
from claim_edits import shuffled_with_rejects as _claims  # tests/ is on the path

OVERPAYING = """
policy "over" {
  region "test"
  effective 2024-01-01 to 2025-12-31
}
layer a "A" {
  base total
  ratio 100%
}
layer b "B" {
  base total
  ratio 10%
}
"""


def _streamed(plan, claims, registry):
    pieces = []
    batch = settle_by_bucket_streamed(plan, claims, buckets(plan, claims), pieces.append,
                                      registry)
    return pieces, batch


@pytest.fixture
def small_pieces(monkeypatch):
    """Kernel chunks of 128 rows (a run's are RUN_CHUNKS of settle's) and pieces of 300:
    many pieces, not on chunk boundaries."""
    monkeypatch.setattr(engine, "CHUNK_ROWS", 128 // engine.RUN_CHUNKS)
    monkeypatch.setattr(engine, "STREAM_ROWS", 300)


@pytest.mark.parametrize("policy, streamed", [("plan", True), ("family_plan", False)])
@pytest.mark.parametrize("n", [0, 1, 2_000])
def test_pieces_are_the_results(policy, streamed, n, request, registry, small_pieces):
    """The pieces concatenated are settle_by_bucket's results; rejects and input rows the
    same. A family key cannot stream (its results are reordered at the end): one piece."""
    plan = request.getfixturevalue(policy)
    claims = _claims(max(n, 12), seed=n).slice(0, n)
    if policy == "family_plan":  # a family id for everyone (a null one is rejected)
        claims = claims.set_column(claims.schema.get_field_index("family_id"), "family_id",
                                   pc.coalesce(claims.column("family_id"),
                                               claims.column("person_id")))
    pieces, batch = _streamed(plan, claims, registry)
    whole = settle_by_bucket(plan, claims, buckets(plan, claims), registry)
    assert len(pieces) >= 1 and all(p.schema.equals(whole.results.schema) for p in pieces)
    assert pa.concat_tables(pieces).equals(whole.results)
    assert batch.results.num_rows == 0 and batch.results.schema.equals(whole.results.schema)
    assert batch.rejects.equals(whole.rejects) and batch.input_rows == whole.input_rows
    assert np.array_equal(batch.rows, whole.rows)
    if n == 2_000:
        assert (len(pieces) > 5) == streamed


def test_overpaid_claims_stop_the_run_with_the_whole_batch_message(registry, small_pieces):
    """check_invariants over the whole results and the stream's check at its end name the
    same first claim and count every overpaid claim, though the pieces were handed out."""
    plan = compile_text(OVERPAYING)
    claims = _claims(1_000, seed=4)
    with pytest.raises(SettlementError) as whole:
        settle_by_bucket(plan, claims, buckets(plan, claims), registry)
    pieces = []
    with pytest.raises(SettlementError) as streamed:
        settle_by_bucket_streamed(plan, claims, buckets(plan, claims), pieces.append, registry)
    assert str(streamed.value) == str(whole.value)
    assert len(pieces) > 1


def _run_files(folder) -> dict:
    return {n: (folder / n).read_bytes() for n in ("claims.parquet", "rejects.parquet")}


def test_streamed_run_writes_the_bytes_of_a_whole_run(plan, registry, tmp_path, monkeypatch,
                                                      small_pieces):
    """claims.parquet and rejects.parquet are the same bytes streamed in many pieces and
    written whole (the engine's streaming turned off)."""
    monkeypatch.setattr(manifest, "ROW_GROUP", 700)
    path = tmp_path / "in.parquet"
    write_claims(_claims(3_000, seed=8), path, row_group_size=1_000)
    run_settle(plan, path, tmp_path / "streamed", registry=registry, progress=False)
    monkeypatch.setattr(engine, "_streamable", lambda *args: False)
    run_settle(plan, path, tmp_path / "whole", registry=registry, progress=False)
    assert _run_files(tmp_path / "streamed") == _run_files(tmp_path / "whole")


def _no_writer_threads() -> bool:
    return not any(t.name.startswith("yibao-write") for t in threading.enumerate())


@pytest.fixture
def writer_stopped_before_discard(monkeypatch) -> list:
    """Whether the writer thread had ended when the run's staging folder was removed (the
    file is closed before it is deleted), recorded at each ``OutputFolder.discard``."""
    seen = []
    real = manifest.OutputFolder.discard

    def discard(self):
        seen.append(_no_writer_threads())
        real(self)
    monkeypatch.setattr(manifest.OutputFolder, "discard", discard)
    return seen


def test_failing_writer_loses_nothing_and_leaves_no_half_file(plan, registry, tmp_path,
                                                             monkeypatch, small_pieces,
                                                             writer_stopped_before_discard):
    """A write failing on the writer thread in the middle of the stream fails the run (its
    error raised, not swallowed), publishes nothing, stops the thread; the next run
    publishes every claim."""
    monkeypatch.setattr(manifest, "ROW_GROUP", 500)
    path = tmp_path / "in.parquet"
    write_claims(_claims(3_000, seed=9), path, row_group_size=1_000)
    real = manifest.ParquetOut.__init__
    calls = []

    def failing_writer(self, *args, **kwargs):
        real(self, *args, **kwargs)
        inner = self.writer

        class Failing:
            def write_table(self, table, **kw):
                calls.append(table.num_rows)
                if len(calls) == 2:
                    raise OSError("disk full")
                inner.write_table(table, **kw)

            def close(self):
                inner.close()
        self.writer = Failing()
    monkeypatch.setattr(manifest.ParquetOut, "__init__", failing_writer)
    out = tmp_path / "out"
    with pytest.raises(OSError, match="disk full"):
        run_settle(plan, path, out, registry=registry, progress=False)
    assert sorted(p.name for p in out.iterdir()) == [".yibao.lock"]
    assert writer_stopped_before_discard == [True]
    monkeypatch.setattr(manifest.ParquetOut, "__init__", real)
    summary = run_settle(plan, path, out, registry=registry, progress=False)
    assert summary.totals.balanced and summary.totals.input_rows == 3_000
    assert summary.totals.settled_rows + summary.totals.rejected_rows == 3_000


def test_engine_error_mid_stream_stops_the_writer(registry, tmp_path, small_pieces, monkeypatch,
                                                  writer_stopped_before_discard):
    """A run stopped by the engine after pieces went to the writer (a policy paying more
    than the total) publishes nothing and leaves no writer thread behind."""
    monkeypatch.setattr(manifest, "ROW_GROUP", 500)  # row groups reach the thread
    plan = compile_text(OVERPAYING)
    path = tmp_path / "in.parquet"
    write_claims(_claims(2_000, seed=2), path)
    out = tmp_path / "out"
    with pytest.raises(SettlementError, match="pays more than the total"):
        run_settle(plan, path, out, registry=registry, progress=False)
    assert sorted(p.name for p in out.iterdir()) == [".yibao.lock"]
    assert writer_stopped_before_discard == [True]


def test_a_runs_chunks_are_longer_than_settles(registry, plan, monkeypatch):
    """A run's kernel chunks are ``RUN_CHUNKS`` of ``settle``'s (issue 14, w17: less fixed
    cost per build on the run's busy cores), with the same pieces: every kernel call but the
    last settles RUN_CHUNKS * CHUNK_ROWS rows."""
    monkeypatch.setattr(engine, "CHUNK_ROWS", 100)
    monkeypatch.setattr(engine, "STREAM_ROWS", 300)
    settled = []
    original = engine.ChunkedSettlement.settle_chunk

    def recording(self, built, progress=None):
        settled.append(built[0].stop - built[0].start)
        return original(self, built, progress)
    monkeypatch.setattr(engine.ChunkedSettlement, "settle_chunk", recording)
    claims = _claims(1_000, seed=8)
    pieces, batch = _streamed(plan, claims, registry)
    rows = engine.RUN_CHUNKS * 100
    assert engine.RUN_CHUNKS >= 2 and settled[:-1] == [rows] * (len(settled) - 1)
    # pieces are cut at STREAM_ROWS whatever the chunk (p17: one row group each)
    assert sum(settled) == batch.rows.size and pieces[0].num_rows == 300


def test_the_timeline_leaves_no_cycle_holding_a_run(plan, registry, monkeypatch):
    """With ``YIBAO_TIMELINE`` on, a streamed settlement's chunked run is freed as soon as it
    returns, without the garbage collector: its timed wrappers held its own bound methods, a
    cycle that kept every partition's columns of a 50M run alive (peak 3.3-3.6 GiB vs 1.5)."""
    import gc
    import weakref
    from yibao.core import timeline
    monkeypatch.setenv("YIBAO_TIMELINE", "1")
    monkeypatch.setattr(timeline, "_events", [])  # this run's stages are never reported
    runs = []
    original = engine.ChunkedSettlement.__init__

    def recording(self, *args, **kwargs):
        original(self, *args, **kwargs)
        runs.append(weakref.ref(self))
    monkeypatch.setattr(engine.ChunkedSettlement, "__init__", recording)
    gc.disable()
    try:
        _streamed(plan, _claims(500, seed=3), registry)
        assert runs and all(run() is None for run in runs)
    finally:
        gc.enable()
