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
from bisect import bisect_right
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pyarrow as pa

from . import timeline


# The pieces double in length (in row groups) up to this many: the first piece is one row
# group, ready soon, and the whole order is a few gathers, not one per row group (issue 14,
# w19: 2M rows of the four identity columns in a random order took ~0.245 s of CPU in 16
# pieces, ~0.19 s in 1, 1, 2, 4, 8 row groups, 0.14-0.30 s in one; a gather's fresh
# buffers and Arrow's take of the dates over every chunk are paid per piece).
MOST_GROUPS = 8


def piece_starts(rows: int, step: int) -> list:
    """The first row of each piece of an order of ``rows`` rows, then ``rows``: pieces of
    1, 1, 2, 4 … ``MOST_GROUPS`` times ``step`` rows (the last one shorter), so every piece
    starts where a row group does."""
    starts, groups = [0], 1
    while starts[-1] < rows:
        starts.append(min(rows, starts[-1] + groups * step))
        if len(starts) > 2:
            groups = min(2 * groups, MOST_GROUPS)
    return starts if rows else [0, 0]


class IdentityPieces:
    """The identity table of the rows of ``order``, gathered by ``gather(prep, rows)`` in
    pieces (``piece_starts``: whole row groups of ``step`` rows): on a thread of its own
    (``yibao-identity``) when ``threaded``, each piece in turn as soon as the one before is
    done; else each piece here, when it is asked for. Pieces are asked for in order and each
    row once (``between``): a piece wholly handed out is let go."""

    def __init__(self, gather, prep, order: np.ndarray, step: int, threaded: bool):
        self.starts = piece_starts(len(order), max(1, int(step)))
        self.waiting: dict = {}  # first row of a piece -> a function giving its table
        pieces = list(zip(self.starts, self.starts[1:]))
        if not threaded:
            for s, e in pieces:
                self.waiting[s] = _later(gather, prep, order[s:e])
        else:
            pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="yibao-identity")
            timed = timeline.timed("identity piece", gather)
            for s, e in pieces:
                self.waiting[s] = pool.submit(timed, prep, order[s:e]).result
            pool.shutdown(wait=False)  # its tasks still run, in order; the thread ends after

    def between(self, start: int, end: int) -> tuple:
        """(the identity of rows ``start:end`` of the order and perhaps some rows before
        ``start`` or after ``end``, the row of the order its first row is): the pieces
        holding those rows, waited for, joined when there are several."""
        first = bisect_right(self.starts, start) - 1
        if self.starts[first] == self.starts[-1] and first > 0:  # the end: the last piece
            first -= 1
        parts, k = [], first
        while True:
            s, e = self.starts[k], self.starts[k + 1]
            parts.append(self.waiting[s]())
            if e <= end:  # wholly handed out
                del self.waiting[s]
            k += 1
            if e >= end or k + 1 >= len(self.starts):
                break
        at = self.starts[first]
        return (pa.concat_tables(parts) if len(parts) > 1 else parts[0]), at

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
