"""The in-memory settle's progress bar advances chunk by chunk, not 0 % then 100 %."""
from __future__ import annotations

import pyarrow.parquet as pq
import pytest

from yibao.core import engine, runner
from yibao.core.generate import generate_claims


@pytest.fixture
def small_chunks(monkeypatch):
    monkeypatch.setattr(engine, "CHUNK_ROWS", 256)


@pytest.mark.parametrize("threads", ["1", "2"])
def test_settle_batch_reports_each_chunk(threads, small_chunks, monkeypatch, reference_plan):
    monkeypatch.setenv("YIBAO_THREADS", threads)
    claims = generate_claims(2_000, seed=5)
    seen = []
    batch = engine.settle(reference_plan, claims, progress=seen.append)
    assert len(seen) == -(-claims.num_rows // 256) and all(n <= 256 for n in seen)
    assert sum(seen) == batch.results.num_rows + batch.rejects.num_rows == claims.num_rows


class Recorder:
    """Stands in for runner.Progress: records every advance of every task."""
    made = []

    def __init__(self, enabled):
        self.steps, self.totals = [], []
        Recorder.made.append(self)

    def task(self, description, total):
        self.totals.append(total)
        return 0

    def advance(self, task, rows):
        self.steps.append(rows)

    def close(self):
        pass


def test_in_memory_run_advances_the_bar_per_chunk(small_chunks, monkeypatch, tmp_path,
                                                  reference_plan):
    Recorder.made.clear()
    monkeypatch.setattr(runner, "Progress", Recorder)
    pq.write_table(generate_claims(1_500, seed=9), tmp_path / "c.parquet")
    summary = runner.run_settle(reference_plan, tmp_path / "c.parquet", tmp_path / "out")
    assert summary.mode == "memory"
    bar, = Recorder.made
    assert bar.totals == [1_500]
    # not one jump at the end: a step per run chunk (RUN_CHUNKS of settle's chunks)
    assert len([s for s in bar.steps if s]) >= 1_500 // (256 * engine.RUN_CHUNKS)
    assert sum(bar.steps) == 1_500
