"""``lower_batch`` in a run's order (issue 14, row_kernel): the program a run's kernel walks
— (bucket, date, claim id) rows, key ids numbered as persons first settle — pays every claim
what the date-order program pays it."""
from __future__ import annotations

import numpy as np

from yibao.core.engine import lower_batch
from yibao.core.partition import buckets
from yibao.core.piece import bucket_plan


def _payments_by_prep_row(low) -> list:
    """Each layer's payments and deductibles, indexed by prepared row (not program row)."""
    low.program.run(low.kernel_order)
    out = []
    for spec in low.program.layers:
        for name in ("out_pay", "out_ded"):
            if spec[name] is not None:
                by_row = np.empty(low.prep.n, dtype=np.int64)
                by_row[low.order] = spec[name]
                out.append(by_row)
    return out


def _check_same_payments(plan, claims):
    lead = buckets(bucket_plan(plan), claims)
    by_date, by_run = lower_batch(plan, claims), lower_batch(plan, claims, lead=lead)
    assert not np.array_equal(by_date.order, by_run.order)
    for a, b in zip(_payments_by_prep_row(by_date), _payments_by_prep_row(by_run)):
        assert np.array_equal(a, b)
    assert int(sum(x.sum() for x in _payments_by_prep_row(by_run))) > 0
    return by_run


def test_run_order_program_pays_what_the_date_order_program_pays(plan, claims):
    by_run = _check_same_payments(plan, claims)
    ids, count = by_run.program.key_ids[0], by_run.program.key_counts[0]
    firsts = ids[np.sort(np.unique(ids, return_index=True)[1])]
    assert firsts.tolist() == list(range(count))  # numbered as they first settle
    bucket = buckets(bucket_plan(plan), claims)[by_run.prep.input_rows(by_run.order)]
    assert (np.diff(bucket) >= 0).all()


def test_run_order_with_a_family_key(family_plan, claims):
    _check_same_payments(family_plan, claims)
