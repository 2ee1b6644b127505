"""A streamed run's results are its chunks' own kernel outputs (issue 14, w18): each chunk's
payments, deductibles and self_pay become the columns of the pieces that hold its rows and
are let go once those pieces are handed out, instead of columns of every row written chunk
by chunk and held to the run's end (at 2M claims, 8 columns of 16 MB). The pieces must be
the same rows whatever the chunk and piece lengths (tests/batch/test_results_streamed.py
compares them with settle_by_bucket); here: nothing is held once handed out, a piece spans
chunks or parts of them, and the writer's queue of such pieces is bounded."""
from __future__ import annotations

import time

import numpy as np
import pyarrow as pa
import pytest

from yibao.core import engine, manifest, runner
from yibao.core.engine import ChunkedSettlement, settle_by_bucket, settle_by_bucket_streamed
from yibao.core.partition import buckets
from claim_edits import shuffled_with_rejects as _claims  # tests/ is on the path


@pytest.fixture
def held(monkeypatch) -> list:
    """After each piece handed out: the chunks whose outputs the run still holds (first
    row, rows), the rows of its whole-run result columns, and the piece's end."""
    seen = []
    real = ChunkedSettlement.results_between

    def results_between(self, identity, start, end, at=0):
        out = real(self, identity, start, end, at)
        if self.by_chunk is None:  # settle_by_bucket's results, for comparison
            return out
        chunks = [(at, len(outputs[2])) for at, outputs in self.by_chunk.items()]
        seen.append((chunks, len(self.self_pay), end))
        return out
    monkeypatch.setattr(ChunkedSettlement, "results_between", results_between)
    return seen


@pytest.mark.parametrize("chunk, piece", [(64, 300), (150, 100), (128, 128), (1_000, 5_000)])
def test_pieces_hold_only_the_chunks_not_yet_handed_out(plan, registry, monkeypatch, held,
                                                        chunk, piece):
    """Pieces across chunk boundaries, inside a chunk, on them, and one piece of all: the
    results are settle_by_bucket's, no whole-run column is made, and once a piece is handed
    out every chunk the run still holds has rows after it."""
    monkeypatch.setattr(engine, "CHUNK_ROWS", chunk // engine.RUN_CHUNKS)
    monkeypatch.setattr(engine, "STREAM_ROWS", piece)
    claims = _claims(2_000, seed=11)
    pieces = []
    settle_by_bucket_streamed(plan, claims, buckets(plan, claims), pieces.append, registry)
    whole = settle_by_bucket(plan, claims, buckets(plan, claims), registry)
    assert pa.concat_tables(pieces).equals(whole.results)
    assert len(held) == len(pieces) and all(rows == 0 for _, rows, _ in held)
    for chunks, _, end in held:
        assert all(at + rows > end for at, rows in chunks)
    assert held[-1][0] == []  # the last piece lets every chunk go


def test_rows_not_yet_settled_are_refused(plan, registry):
    """Asking for rows no chunk has settled is an error, never a piece of stale rows."""
    claims = _claims(300, seed=12)
    from yibao.core.arrow_io import prepare
    prep = prepare(plan, claims)
    run = ChunkedSettlement(plan, prep, registry, np.arange(prep.n, dtype=np.int64),
                            by_chunk=True)
    run.settle_chunk(run.build(0, 100))
    assert len(run._outputs(0, 50)[2]) == 50
    with pytest.raises(ValueError, match="not all settled"):
        run._outputs(50, 150)


@pytest.mark.parametrize("keep", [False, True])
def test_the_writer_queue_of_results_is_bounded_unless_they_are_kept(tmp_path, keep,
                                                                     monkeypatch):
    """Pieces own their columns, so a writer falling behind would hold every piece: at most
    RESULTS_AHEAD row groups wait for it; when the run keeps the results anyway (a provider
    year reads them whole) there is no bound to pay for."""
    made = []
    monkeypatch.setattr(runner, "ParquetOut",
                        lambda path, schema, ahead=None, digest=False: made.append(ahead))
    out = type("Out", (), {"stage": lambda self, name: tmp_path / name})()
    results = runner._ResultsOut(out, lambda t: t, runner.Totals(input_rows=0), [], keep)
    try:
        results.write(pa.table({"claim_id": ["a"]}))
    except AttributeError:  # the stand-in writer has no write(): only its ``ahead`` matters
        pass
    assert made == [0 if keep else runner.RESULTS_AHEAD] and runner.RESULTS_AHEAD > 0


def test_a_run_ends_with_one_row_group_at_most_left_to_write(tmp_path, monkeypatch):
    """The writer is a run's last stage and its encoding runs on one core: every row group
    queued behind it when the kernel ends is written with the other core idle (issue 14,
    w20), so a writer slower than the kernel makes the kernel wait instead of queueing
    more than the one it writes."""
    monkeypatch.setattr(manifest, "ROW_GROUP", 10)
    real = manifest.ParquetOut._write

    def slow(self, group):  # a writer far behind the settlement
        time.sleep(0.02)
        real(self, group)
    monkeypatch.setattr(manifest.ParquetOut, "_write", slow)
    out = type("Out", (), {"stage": lambda self, name: tmp_path / name, "digests": {}})()
    results = runner._ResultsOut(out, lambda t: t, runner.Totals(), [], keep=False)
    for k in range(8):
        results.write(pa.table({"claim_id": [f"c{k}-{i}" for i in range(10)],
                                "self_pay": pa.array(range(10), pa.int64())}))
    left = sum(not job.done() for job in results.writer.queued)
    results.close()
    assert left <= 1  # the one being written, none queued behind it (4 before w20)
    assert manifest.pq.read_table(tmp_path / "claims.parquet").num_rows == 80
