"""Supervision in a batch run: one call after settlement (core/runner.py ``run_settle``).

``write_supervision(policy, sources, out, rows)`` reads back the columns the flag rules need
— from the claim files and from the staged ``claims.parquet`` — evaluates the flags over the
whole run (every partition together: the city figures are the run's; each result's claim
found through its input row, ``rows``, which the runner hands on from the settlement, in
memory and partitioned), stages ``flags.parquet`` and
``hospital_indicators.parquet`` and, when a flag has ``effect review``, rewrites the staged
``claims.parquet`` with its ``pending_review`` column, row group by row group. Its cost is
one more read of a few columns of the input and of the results, and the flag evaluation
(docs/supervision.md "Cost"); memory is those columns for the whole run.
"""
from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq

from yibao.core.arrow_io import normal_table

from . import evaluate, summary, supervision_of
from .stays import PENDING, stay_columns, with_pending_review

OUTPUTS = ("flags.parquet", "hospital_indicators.parquet")


def _read(source, names) -> pa.Table:
    present = [n for n in names if n in source.schema.names]
    if source.ipc:
        return normal_table(source.read().select(present))
    return normal_table(pq.ParquetFile(str(source.path)).read(columns=present))


def read_claims(sources, names) -> pa.Table:
    tables = [_read(s, names) for s in sources]
    return pa.concat_tables(tables, promote_options="permissive") if len(tables) > 1 \
        else tables[0]


def write_supervision(policy, sources, out, rows=None) -> dict:
    """Stage the supervision outputs of a run; its summary.json part ({} for no flags).
    ``rows``: the input row (over the run's files, core/sources.py) of each row of the staged
    claims.parquet, when the run knows them: the claims are then read by row, not looked up
    by claim id (``evaluate``)."""
    sup = supervision_of(policy)
    if sup is None or not sup.flags:
        return {}
    claims = read_claims(sources, list(stay_columns(sup)))
    staged = out.stage("claims.parquet")
    wanted = [n for n in ("claim_id", "self_pay", "group")
              if n in pq.ParquetFile(str(staged)).schema_arrow.names]
    result = evaluate(policy, claims, pq.read_table(str(staged), columns=wanted), rows=rows)
    out.write_table("flags.parquet", result.flags)
    out.write_table("hospital_indicators.parquet", result.indicators)
    if any(f.effect for f in sup.flags):
        _add_pending_review(out, result.held)
    return summary(result)


def _add_pending_review(out, held: pa.Table) -> None:
    """Rewrite the staged results with ``pending_review``, streaming (same row order)."""
    from yibao.core.manifest import ParquetOut
    staged = out.stage("claims.parquet")
    tmp = staged.with_name("claims.pending.parquet")
    reader = pq.ParquetFile(str(staged))
    writer = None
    for batch in reader.iter_batches():
        table = with_pending_review(pa.Table.from_batches([batch]), held)
        if writer is None:
            writer = ParquetOut(tmp, table.schema)
        writer.write(table)
    if writer is None:
        empty = with_pending_review(reader.schema_arrow.empty_table(), held)
        writer = ParquetOut(tmp, empty.schema)
    writer.close()
    tmp.replace(staged)


__all__ = ["write_supervision", "OUTPUTS", "PENDING"]
