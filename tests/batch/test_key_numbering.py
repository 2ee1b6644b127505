"""Accumulator key ids renumbered along a run's settlement order (issue 14): a plain
relabelling by first appearance, which results never depend on."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from yibao.core import engine
from yibao.core._ids import renumber_in_order
from yibao.core.partition import buckets
from yibao.core.piece import bucket_plan


def _first_appearance_oracle(ids, order):
    seen, out = {}, [-1] * len(ids)
    for row in order:
        if ids[row] >= 0:
            out[row] = seen.setdefault(ids[row], len(seen))
    return out


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(-1, 6), max_size=40), st.randoms(use_true_random=False))
def test_renumber_in_order_is_first_appearance(ids, rnd):
    order = list(range(len(ids)))
    rnd.shuffle(order)
    got = renumber_in_order(np.array(ids, dtype=np.int64), np.array(order, dtype=np.int64), 7)
    assert got.tolist() == _first_appearance_oracle(ids, order)


def test_run_order_numbers_persons_as_they_settle(plan, claims, registry):
    """In a run's (bucket, date, claim id) order the person ids the kernel gets count up
    0, 1, 2, … as persons first settle, and the results are those of ``settle``."""
    bucket = np.asarray(buckets(bucket_plan(plan), claims))
    prep = engine.run_validators(plan, engine.prepare(plan, claims), registry)
    order, keys = engine._order_and_keys(plan, prep, bucket)
    ids, count = keys["person"]
    seq = ids[order]
    firsts = seq[np.sort(np.unique(seq, return_index=True)[1])]
    assert firsts.tolist() == list(range(count))
    by_bucket = engine.settle_by_bucket(plan, claims, bucket, registry).results
    plain = engine.settle(plan, claims, registry).results
    assert by_bucket.sort_by("claim_id").equals(plain.sort_by("claim_id"))
    assert by_bucket.num_rows > 1000 and not by_bucket.equals(plain)
