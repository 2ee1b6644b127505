"""Pass 2 of the partitioned mode as it settles since issue 14 (s17): each partition's results
handed to the writer as they settle (``piece.settle_piece_streamed``, as in memory), the next
partition read from its spill file on a thread meanwhile, claims.parquet hashed by the writer
thread as it is written, jemalloc's purge delay chosen by the limit. The outputs must stay
the in-memory run's bytes whatever the pieces, and a failure must stop every thread of the
run and publish nothing."""
from __future__ import annotations

import hashlib
import json
import threading

import pyarrow as pa
import pytest

from yibao.core import engine, manifest, runner, spill
from yibao.core.generate import write_claims
from yibao.core.runner import run_settle
from claim_edits import shuffled_with_rejects as _claims  # tests/ is on the path

FILES = ("claims.parquet", "rejects.parquet")


@pytest.fixture
def claims_path(tmp_path):
    path = tmp_path / "in.parquet"
    write_claims(_claims(4_000, seed=17), path, row_group_size=1_000)
    return path


@pytest.fixture
def small_pieces(monkeypatch):
    """Kernel chunks of 128 rows, results handed out every 300, row groups of 700: a
    partition of ~1,300 claims goes to the writer in several pieces."""
    monkeypatch.setattr(engine, "CHUNK_ROWS", 128)
    monkeypatch.setattr(engine, "STREAM_ROWS", 300)
    monkeypatch.setattr(manifest, "ROW_GROUP", 700)


def _files(folder) -> dict:
    return {name: (folder / name).read_bytes() for name in FILES}


def _written_pieces(monkeypatch) -> list:
    """The row count of every table handed to a ParquetOut of claims.parquet."""
    sizes = []
    real = manifest.ParquetOut.write

    def write(self, table):
        if self.path.name == "claims.parquet":
            sizes.append(table.num_rows)
        real(self, table)
    monkeypatch.setattr(manifest.ParquetOut, "write", write)
    return sizes


def test_partitions_hand_their_results_to_the_writer_as_they_settle(
        plan, registry, claims_path, tmp_path, monkeypatch, small_pieces):
    """Each partition's results reach the writer in pieces (not once whole), and the files are
    the bytes of the in-memory run and of a partitioned run whose partitions settle whole."""
    sizes = _written_pieces(monkeypatch)
    summary = run_settle(plan, claims_path, tmp_path / "p", registry=registry,
                         progress=False, partitions=3)
    settled = summary.totals.settled_rows
    assert sum(sizes) == settled and len(sizes) > 3 and max(sizes) < settled / 3
    monkeypatch.setattr(engine, "_streamable", lambda *args: False)
    run_settle(plan, claims_path, tmp_path / "whole", registry=registry, progress=False,
               partitions=3)
    run_settle(plan, claims_path, tmp_path / "m", registry=registry, progress=False)
    assert _files(tmp_path / "p") == _files(tmp_path / "whole") == _files(tmp_path / "m")
    reasons = json.loads((tmp_path / "p" / "summary.json").read_text())["rejected"]["reasons"]
    assert reasons["duplicate_claim_id"] == 2


def test_the_next_partition_is_read_on_a_thread(plan, registry, claims_path, tmp_path,
                                                monkeypatch):
    """Pass 2 reads every spill file on the read-ahead thread, not on the settling one."""
    threads = []
    real = spill.Spill.read

    def read(self, p, columns=None, **kw):
        if columns is None:  # pass 2's reads (duplicate_ids reads two columns)
            threads.append(threading.current_thread().name)
        return real(self, p, columns, **kw)
    monkeypatch.setattr(spill.Spill, "read", read)
    run_settle(plan, claims_path, tmp_path / "p", registry=registry, progress=False,
               partitions=4)
    assert len(threads) == 4 and all(name.startswith("yibao-read") for name in threads)


def _no_run_threads() -> bool:
    return not any(t.name.startswith(("yibao-read", "yibao-write"))
                   for t in threading.enumerate())


@pytest.mark.parametrize("failing", [1, 3])
def test_a_failed_spill_read_stops_the_run_and_its_threads(plan, registry, claims_path,
                                                           tmp_path, monkeypatch, failing):
    """A spill file that cannot be read (the second partition: while the first settles; the
    last) fails the run with its error, publishes nothing, and no read-ahead or writer
    thread outlives the run; the next run publishes every claim."""
    real = spill.Spill.read

    def read(self, p, columns=None, **kw):
        if columns is None and p == failing:
            raise OSError(f"cannot read partition {p}")
        return real(self, p, columns, **kw)
    monkeypatch.setattr(spill.Spill, "read", read)
    out = tmp_path / "out"
    with pytest.raises(OSError, match=f"cannot read partition {failing}"):
        run_settle(plan, claims_path, out, registry=registry, progress=False, partitions=4)
    assert sorted(p.name for p in out.iterdir()) == [".yibao.lock"]
    assert _no_run_threads()
    monkeypatch.setattr(spill.Spill, "read", real)
    summary = run_settle(plan, claims_path, out, registry=registry, progress=False,
                         partitions=4)
    assert summary.totals.balanced and summary.totals.input_rows == 4_000


def test_claims_parquet_is_hashed_as_it_is_written(plan, registry, claims_path, tmp_path,
                                                    monkeypatch):
    """The manifest's sha256 of a partitioned run's claims.parquet is the writer thread's
    (the file is not read again after the run) and is the file's."""
    hashed = []
    real = manifest.sha256_file

    def sha256_file(path, stop=None):
        hashed.append(str(path))
        return real(path, stop)
    monkeypatch.setattr(manifest, "sha256_file", sha256_file)
    out = tmp_path / "p"
    run_settle(plan, claims_path, out, registry=registry, progress=False, partitions=3)
    assert not any(path.endswith("claims.parquet") for path in hashed)
    listed = json.loads((out / "manifest.json").read_text())["outputs"]["claims.parquet"]
    assert listed["sha256"] == hashlib.sha256((out / "claims.parquet").read_bytes()).hexdigest()


def test_purge_delay_follows_the_limit(plan, registry, claims_path, tmp_path, monkeypatch):
    """Freed Arrow memory goes back at once under a limit below 1 GiB (the peak is what
    such a limit is for), after 10 s above it (fewer page faults)."""
    assert runner.purge_delay_ms(200 << 20) == 0
    assert runner.purge_delay_ms((1 << 30) - 1) == 0
    assert runner.purge_delay_ms(1 << 30) == runner.PURGE_AFTER_MS == 10_000
    assert runner.purge_delay_ms(4 << 30) == 10_000
    set_to = []
    monkeypatch.setattr(pa, "jemalloc_set_decay_ms", set_to.append)
    for limit in (200 << 20, 4 << 30):
        run_settle(plan, claims_path, tmp_path / str(limit), registry=registry,
                   progress=False, partitions=2, memory_limit=limit)
    assert set_to in ([0, 10_000], [])  # [] where pyarrow has no jemalloc
