"""Buckets: how claims are split for settlement in pieces, and the row order of the results.

Every claim belongs to one of ``NBUCKETS`` buckets: the FNV-1a 64-bit hash (core/_hash.pyx) of
its *partition key* modulo ``NBUCKETS``. The partition key is the plan's widest accumulator key:
the family-or-person value (``lower.key_values``: the family column, or the person when it is
null) when the plan uses a non-person key, else ``person_id``. All claims sharing any
accumulator then share a bucket, so a bucket can be settled alone with the same result.

The results file is ordered by ``(bucket, discharge_date, claim_id)`` — whatever the engine,
the number of partitions, the batch size or the number of threads. A partition is a
contiguous range of buckets (``partition_of``), so writing partitions in order writes buckets
in order. The number of buckets is fixed: changing it changes the row order, not the values.

Restriction (checked, ``PartitionError``): a plan with two different non-person keys cannot be
split, and a person must appear under one partition key (not with a family id on some claims
and none on others) for the partitioned engines; the in-memory path has no such restriction.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from . import _hash, timeline
from .lower import key_values
from .plan import PERSON, Key, Plan
from .errors import YibaoError

NBUCKETS = 4096


class PartitionError(YibaoError, ValueError):
    """The claims cannot be split into independent partitions under this plan (exit 2)."""


def partition_key(plan: Plan) -> Key:
    """The key whose groups contain every accumulator group of the plan (module docstring)."""
    # a refined key (per person and disease, per month) groups within its coarse key
    wider = list({k.coarse.name: k.coarse for k in plan.keys()
                  if k.coarse.name != PERSON.name}.values())
    if len(wider) > 1:
        names = ", ".join(k.name for k in wider)
        raise PartitionError(f"the policy accumulates over several keys ({names}); yibao can "
                             "only split a run by one of them: settle it in memory")
    return wider[0] if wider else PERSON


def hash_strings(values) -> np.ndarray:
    """uint64 FNV-1a hash of every value (cast to string; null hashes to 0), read chunk by
    chunk where the column is (no combined copy)."""
    return _hash.hashes_of(values)


def buckets(plan: Plan, table: pa.Table) -> np.ndarray:
    """int32 bucket of every row of ``table`` (module docstring)."""
    if table.num_rows == 0:
        return np.zeros(0, dtype=np.int32)
    key = partition_key(plan)
    with timeline.stage("buckets"):  # a run's first step before ``prepare`` (issue 14)
        # the person's values are the column itself: read in place, not combined first
        values = table.column("person_id") if key.column == "person_id" else \
            key_values(table, key)
        return _hash.buckets_of(values, NBUCKETS)


def partition_of(bucket: np.ndarray, partitions: int) -> np.ndarray:
    """Partition of each bucket: contiguous bucket ranges, so partition order is bucket order."""
    return (np.asarray(bucket, dtype=np.int64) * partitions // NBUCKETS).astype(np.int32)


def bucket_order(results_claim_id, claims_claim_id, claims_bucket: np.ndarray,
                 rows=None) -> np.ndarray:
    """Indices putting results (in settlement order) into (bucket, discharge_date, claim_id)
    order: a stable sort by the bucket of each result's claim, found through ``rows`` (the
    claims row of each result, ``BatchResult.rows``) when given, else through its claim id
    (unique among accepted claims)."""
    if rows is None:
        pos = pc.index_in(results_claim_id, value_set=claims_claim_id)
        rows = pos.to_numpy(zero_copy_only=False)
    return np.argsort(claims_bucket[np.asarray(rows, dtype=np.int64)], kind="stable")
