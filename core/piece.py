"""One piece of a run: the claims of some whole buckets settled by the engine, results in
the file's (bucket, discharge_date, claim_id) order and rejects carrying input row numbers.
The local runner (core/runner.py) settles a run as one piece (in memory) or one per
partition; the Spark engine (core/spark.py) runs the same function on its executors."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .arrow_io import REJECT_SCHEMA, _message, fen_sum
from .engine import settle, settle_by_bucket, settle_by_bucket_streamed
from .partition import PartitionError
from .plan import PERSON, Plan
from .policy import Policy


def bucket_plan(plan) -> Plan:
    """The version whose partition key splits the run: every version must accumulate over
    the person or one same wider key (a family) for the run to be split by buckets."""
    plans = Policy.of(plan).versions
    wide = {k.coarse.name: p for p in plans for k in p.keys() if k.coarse.name != PERSON.name}
    if len(wide) > 1:
        raise PartitionError(f"the policy versions accumulate over several keys "
                             f"({', '.join(wide)}); settle this run in memory")
    return next(iter(wide.values())) if wide else plans[0]


def zero_nulls(results: pa.Table) -> pa.Table:
    """For the control totals: a layer a claim's version lacks (null) paid 0."""
    for i, name in enumerate(results.column_names):
        col = results.column(i)
        if col.null_count and pa.types.is_integer(col.type):
            results = results.set_column(i, name, col.fill_null(0))
    return results


def settle_piece(plan: Plan, table: pa.Table, rows: np.ndarray, bucket: np.ndarray,
                 registry, context, progress=None) -> tuple:
    """Settle the claims of some whole buckets. ``rows`` are their input row numbers and
    ``bucket`` their buckets. Returns (results in (bucket, date, claim_id) order, rejects with
    input row numbers, fen of the rejected rows' totals, the row of ``table`` of each result
    or None when the engine's path does not know it: ``BatchResult.rows``)."""
    if table.num_rows == 0:
        empty = settle(plan, table, registry, context)
        return empty.results, empty.rejects, 0, np.zeros(0, np.int64)
    batch = settle_by_bucket(plan, table, bucket, registry, context, progress)
    results = batch.results
    local = np.asarray(batch.rejects.column("row").to_numpy(), dtype=np.int64)
    rejects = batch.rejects.set_column(1, "row", pa.array(rows[local], pa.int64()))
    fen = fen_sum(table.column("total").take(pa.array(local))) if len(local) else 0
    return results, rejects, fen, batch.rows


def settle_piece_streamed(plan: Plan, table: pa.Table, rows: np.ndarray, bucket: np.ndarray,
                          registry, context, emit, progress=None) -> tuple:
    """``settle_piece`` with the results handed to ``emit(piece)`` in order as they settle
    (``engine.settle_by_bucket_streamed``: at least one piece, whole when the engine's path
    makes them at the end). ``bucket`` may be a function giving the buckets (the engine
    calls it once its provider part has started). Returns (rejects with input row numbers,
    fen of the rejected rows' totals, the row of ``table`` of each result or None)."""
    if table.num_rows == 0:
        empty = settle(plan, table, registry, context)
        emit(empty.results)
        return empty.rejects, 0, np.zeros(0, np.int64)
    batch = settle_by_bucket_streamed(plan, table, bucket, emit, registry, context, progress)
    local = np.asarray(batch.rejects.column("row").to_numpy(), dtype=np.int64)
    rejects = batch.rejects.set_column(1, "row", pa.array(rows[local], pa.int64()))
    fen = fen_sum(table.column("total").take(pa.array(local))) if len(local) else 0
    return rejects, fen, batch.rows


def duplicate_rejects(table: pa.Table, rows: np.ndarray, duplicates: pa.Array) -> tuple:
    """(rows of ``table`` whose claim id is a known duplicate, their rejects, their fen)."""
    mask = np.asarray(pc.is_in(table.column("claim_id"), value_set=duplicates)
                      .to_numpy(zero_copy_only=False), dtype=bool)
    idx = np.flatnonzero(mask)
    ids = table.column("claim_id").take(pa.array(idx)).to_pylist()
    rejects = pa.table({
        "claim_id": pa.array(ids, pa.string()), "row": pa.array(rows[idx], pa.int64()),
        "reason": pa.array(["duplicate_claim_id"] * len(idx), pa.string()),
        "message": pa.array([_message("duplicate_claim_id", "claim_id", c) for c in ids],
                            pa.string())}, schema=REJECT_SCHEMA)
    fen = fen_sum(table.column("total").take(pa.array(idx))) if len(idx) else 0
    return mask, rejects, fen


def input_fen(table: pa.Table) -> int:
    return fen_sum(table.column("total"))
