"""A streamed run gathers its results' identity columns a piece at a time (core/identity.py,
issue 14, w19): the writer gets the first piece once that piece's identity is gathered,
not after the whole order's, and the pieces are the rows ``settle_by_bucket`` gives."""
from __future__ import annotations

import threading

import numpy as np
import pyarrow as pa
import pytest

from yibao.core import engine
from yibao.core.engine import settle_by_bucket, settle_by_bucket_streamed
from yibao.core.identity import IdentityPieces, piece_starts
from yibao.core.partition import buckets
from claim_edits import shuffled_with_rejects as _claims  # tests/ is on the path


@pytest.fixture
def gathers(monkeypatch) -> list:
    """(rows, thread name) of each identity gather, in the order they ran."""
    seen, real = [], engine._identity_in_order

    def recorded(prep, order):
        seen.append((len(order), threading.current_thread().name))
        return real(prep, order)
    monkeypatch.setattr(engine, "_identity_in_order", recorded)
    return seen


def small_run(monkeypatch, chunk=100, piece=250):
    monkeypatch.setattr(engine, "CHUNK_ROWS", chunk // engine.RUN_CHUNKS)
    monkeypatch.setattr(engine, "STREAM_ROWS", piece)


@pytest.mark.parametrize("threads", ["1", "2"])
def test_the_first_piece_waits_only_for_its_own_identity(plan, registry, monkeypatch,
                                                         gathers, threads):
    """One thread: when the first piece is handed out, only its rows' identity is gathered
    (the old code gathered every row's first). Either way the gathers are the pieces of
    ``piece_starts`` and the pieces handed out are settle_by_bucket's results."""
    monkeypatch.setenv("YIBAO_THREADS", threads)
    small_run(monkeypatch)
    claims = _claims(2_000, seed=21)
    pieces, gathered_at_first = [], []

    def emit(piece):
        if not pieces:
            gathered_at_first.extend(gathers)
        pieces.append(piece)
    settle_by_bucket_streamed(plan, claims, buckets(plan, claims), emit, registry)
    streamed = list(gathers)
    whole = settle_by_bucket(plan, claims, buckets(plan, claims), registry)
    assert pa.concat_tables(pieces).equals(whole.results)
    sizes = [rows for rows, _ in streamed]
    assert len(pieces) > 2 and sizes == np.diff(piece_starts(sum(sizes), 250)).tolist()
    if threads == "1":
        assert [rows for rows, _ in gathered_at_first] == [250]
    else:
        assert all(name.startswith("yibao-identity") for _, name in streamed)


def test_a_piece_across_pieces_is_joined_and_pieces_handed_out_are_let_go():
    """``between`` of rows spanning two gathered pieces joins them and says where the joined
    table starts; a piece wholly handed out is dropped; an order of no rows still gives the
    columns."""
    def gather(_, rows):
        return pa.table({"claim_id": pa.array([f"c{r}" for r in rows], pa.string())})
    pieces = IdentityPieces(gather, None, np.arange(10, dtype=np.int64), 4, threaded=False)
    table, at = pieces.between(0, 4)
    assert at == 0 and table.column("claim_id").to_pylist() == ["c0", "c1", "c2", "c3"]
    table, at = pieces.between(4, 10)
    assert at == 4 and table.column("claim_id").to_pylist() == [f"c{r}" for r in range(4, 10)]
    assert pieces.waiting == {}
    empty = IdentityPieces(gather, None, np.zeros(0, np.int64), 4, threaded=False)
    table, at = empty.between(0, 0)
    assert table.num_rows == 0 and table.column_names == ["claim_id"]


def test_a_failed_run_starts_no_more_gathers():
    """``cancel`` drops the pieces not yet gathered (a failed run's thread ends soon)."""
    started, release = [], threading.Event()

    def gather(_, rows):
        started.append(len(rows))
        release.wait(5)
        return pa.table({"claim_id": pa.array([str(r) for r in rows])})
    pieces = IdentityPieces(gather, None, np.arange(40, dtype=np.int64), 4, threaded=True)
    pieces.cancel()
    release.set()
    for _ in range(100):
        if started:
            break
        threading.Event().wait(0.01)
    threading.Event().wait(0.05)
    assert len(started) <= 1 and pieces.waiting == {}


def test_pieces_start_on_row_groups_and_double_up_to_a_bound():
    assert piece_starts(0, 4) == [0, 0]
    assert piece_starts(3, 4) == [0, 3]
    assert piece_starts(10, 4) == [0, 4, 8, 10]
    assert piece_starts(100, 1) == [0, 1, 2, 4, 8, 16, 24, 32, 40, 48, 56, 64, 72, 80, 88,
                                    96, 100]


def test_rows_within_a_longer_piece_are_taken_from_it():
    """Row groups asked for one by one out of a piece of several: the same piece, the
    right offset, let go after its last row."""
    def gather(_, rows):
        return pa.table({"claim_id": pa.array([f"c{r}" for r in rows], pa.string())})
    pieces = IdentityPieces(gather, None, np.arange(9, dtype=np.int64), 1, threaded=True)
    got = []
    for start in range(9):
        table, at = pieces.between(start, start + 1)
        got.append(table.column("claim_id")[start - at].as_py())
    assert got == [f"c{r}" for r in range(9)] and pieces.waiting == {}


def test_a_run_failing_before_the_kernel_stops_the_identity_gathers(plan, registry,
                                                                      monkeypatch):
    """A failure after the identity gathers started but before the kernel ran (building the
    settlement, the provider layout) cancels the pieces not yet gathered, as a failure in
    the kernel does (the session-9 review: the thread went on to the end of the order)."""
    monkeypatch.setenv("YIBAO_THREADS", "2")
    small_run(monkeypatch)
    claims = _claims(2_000, seed=22)
    started, release = [], threading.Event()
    real = engine._identity_in_order

    def slow(prep, order):
        started.append(len(order))
        release.wait(5)
        return real(prep, order)
    monkeypatch.setattr(engine, "_identity_in_order", slow)

    class Broken(engine.ChunkedSettlement):
        def __init__(self, *args, **kwargs):
            raise RuntimeError("no settlement")
    monkeypatch.setattr(engine, "ChunkedSettlement", Broken)
    with pytest.raises(RuntimeError, match="no settlement"):
        settle_by_bucket_streamed(plan, claims, buckets(plan, claims), lambda piece: None,
                                  registry)
    release.set()
    for thread in threading.enumerate():
        if thread.name.startswith("yibao-identity"):
            thread.join(5)
    pieces = len(piece_starts(claims.num_rows, 250)) - 1
    assert pieces > 3 and len(started) <= 1  # the piece being gathered, no more
