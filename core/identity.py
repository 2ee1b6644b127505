"""The identity columns of a streamed run's results, gathered a piece at a time.

A run's results carry each claim's ``claim_id`` and identity columns (settlement.IDENTITY) in
settlement order: string gathers of the prepared rows (``engine._identity_in_order``). The
writer thread can encode a piece of results only once its identity is gathered. Gathered as
one table, the first row group waited for the whole gather (issue 14, w19: at 2M claims the
writer started 0.24 s after the order was known and its 0.44 s of encoding ran after the
chunk builds instead of beside them). Gathered in pieces of the rows the run hands out
(``engine.STREAM_ROWS``), in order, on one thread, the first piece is ready after 1/16 of
that and each piece's buffers are let go once written, so the allocator reuses them instead
of faulting in fresh pages for the whole run's identity.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pyarrow as pa

from . import timeline


class IdentityPieces:
    """The identity table of the rows of ``order``, gathered by ``gather(prep, rows)`` in
    pieces of ``step`` rows of the order: on a thread of its own (``yibao-identity``) when
    ``threaded``, each piece in turn as soon as the one before is done; else each piece here,
    when it is asked for. Pieces are asked for in order and each row once (``between``): a
    piece wholly handed out is let go."""

    def __init__(self, gather, prep, order: np.ndarray, step: int, threaded: bool):
        self.step, self.rows = max(1, int(step)), len(order)
        self.waiting: dict = {}  # first row of a piece -> a function giving its table
        starts = range(0, len(order), self.step)
        if not threaded:
            for s in starts:
                self.waiting[s] = _later(gather, prep, order[s:s + self.step])
        else:
            pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="yibao-identity")
            timed = timeline.timed("identity piece", gather)
            for s in starts:
                self.waiting[s] = pool.submit(timed, prep, order[s:s + self.step]).result
            pool.shutdown(wait=False)  # its tasks still run, in order; the thread ends after
        self.empty = _later(gather, prep, order[:0])  # an order of no rows: no columns

    def between(self, start: int, end: int) -> tuple:
        """(the identity of rows ``start:end`` of the order and perhaps some rows before
        ``start`` or after ``end``, the row of the order its first row is): the pieces
        holding those rows, waited for, joined when there are several."""
        first = start // self.step * self.step
        parts = []
        for s in range(first, end, self.step):
            parts.append(self.waiting[s]())
            if min(s + self.step, self.rows) <= end:  # wholly handed out
                del self.waiting[s]
        if not parts:
            return self.empty(), start
        return (pa.concat_tables(parts) if len(parts) > 1 else parts[0]), first

    def cancel(self) -> None:
        """The run failed: pieces not yet started are not gathered (a piece being gathered
        is finished by its thread and dropped)."""
        for waiting in self.waiting.values():
            future = getattr(waiting, "__self__", None)
            if future is not None:
                future.cancel()
        self.waiting.clear()


def threaded(rows: int, least: int) -> bool:
    """Whether the gathers of ``rows`` rows get a thread of their own: from ``least`` rows on
    (below, the thread costs more than it saves) unless ``YIBAO_THREADS=1``."""
    return rows >= least and os.environ.get("YIBAO_THREADS", "2") != "1"


def _later(fn, *args):
    """``fn(*args)`` when called, once."""
    done = []

    def result():
        if not done:
            done.append(fn(*args))
        return done[0]
    return result
