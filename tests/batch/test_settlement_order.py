"""The settlement order sorted in C (core/_order.pyx, issue 14) is Arrow's exact stable sort
on (lead, discharge day, claim id), whatever the ids share: a common lead, the 8 bytes of the
integer key, a prefix of another id, non-ASCII text; on every path of the sort (insertion for
a few rows of a day, a radix sort of the keys for many, a merge sort where keys are equal)."""
from __future__ import annotations

import tracemalloc

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from yibao.core.lower import settlement_order

LEADS = st.sampled_from(["", "K000C", "H12345-2024-", "院", "ab", "ABCDEFGH", "ABCDEFGH\x00"])
TAIL = st.text(alphabet="\x000189AZz-é院😀", max_size=12)


def exact(claim_id, day, lead=None) -> list:
    """Arrow's stable sort on (lead, day, claim id): the definition."""
    cols = {} if lead is None else {"l": pa.array(lead, pa.int64())}
    cols.update(d=pa.array(day, pa.int64()), c=claim_id)
    keys = [(k, "ascending") for k in cols]
    return pc.sort_indices(pa.table(cols), sort_keys=keys).to_numpy().tolist()


def shuffled(ids: list, seed: int) -> pa.Array:
    order = np.random.default_rng(seed).permutation(len(ids))
    return pa.array([ids[i] for i in order], pa.string())


@settings(max_examples=200, deadline=None)
@given(ids=st.lists(st.tuples(LEADS, TAIL), min_size=1, max_size=90, unique=True),
       data=st.data(), led=st.booleans())
def test_order_is_the_exact_sort(ids, data, led):
    claim_id = shuffled(sorted({a + b for a, b in ids}), len(ids))
    n = len(claim_id)
    day = np.array(data.draw(st.lists(st.integers(19_700, 19_702), min_size=n, max_size=n)),
                   dtype=np.int64)
    lead = np.array(data.draw(st.lists(st.integers(0, 4095), min_size=n, max_size=n)),
                    dtype=np.int64) if led else None
    assert settlement_order(claim_id, day, lead).tolist() == exact(claim_id, day, lead)


@pytest.mark.parametrize("width", [0, 3, 8, 11])
def test_many_claims_of_one_day_equal_on_the_key_bytes(width):
    """More ids of one day than an insertion sort takes, sharing the 8 key bytes after the
    common lead (width 8, 11: the merge sort decides) or not (0, 3: the radix sort does), with
    ids that are prefixes of others."""
    ids = [f"H-{'x' * width}{k}" for k in range(300)] + [f"H-{'x' * width}", "H-", "H-\x00"]
    claim_id = shuffled(ids, width)
    day = np.full(len(ids), 19_000, dtype=np.int64)
    day[::7] = 19_001
    assert settlement_order(claim_id, day).tolist() == exact(claim_id, day)
    lead = np.arange(len(ids), dtype=np.int64) % 3
    assert settlement_order(claim_id, day, lead).tolist() == exact(claim_id, day, lead)


def test_equal_ids_keep_their_row_order():
    """Never among accepted claims (a duplicate is rejected), but the order stays stable."""
    claim_id = pa.array(["b", "a", "b", "a", "b"] * 10, pa.string())
    day = np.zeros(len(claim_id), dtype=np.int64)
    assert settlement_order(claim_id, day).tolist() == exact(claim_id, day)


def test_wide_leads_and_dates_across_centuries():
    """Groups of more than 16 bits (three radix passes) and a lead past 16 bits."""
    rng = np.random.default_rng(7)
    n = 5_000
    claim_id = pa.array([f"C{k:07d}" for k in rng.permutation(n)], pa.string())
    day = rng.integers(-40_000, 60_000, n).astype(np.int64)
    lead = rng.integers(0, 200_000, n).astype(np.int64)
    assert settlement_order(claim_id, day, lead).tolist() == exact(claim_id, day, lead)
    assert settlement_order(claim_id, day).tolist() == exact(claim_id, day)


def test_other_layouts_of_the_ids_give_the_same_order():
    """A slice (offsets not at 0), chunks, large_string; nulls take Arrow's sort."""
    ids = pa.array([f"Z{k % 97:03d}-{k}" for k in range(400)], pa.string())
    day = np.arange(400, dtype=np.int64) % 5
    want = exact(ids.slice(100), day[100:])
    assert settlement_order(ids.slice(100), day[100:]).tolist() == want
    chunked = pa.chunked_array([ids.slice(100, 150), ids.slice(250)])
    assert settlement_order(chunked, day[100:]).tolist() == want
    large = ids.slice(100).cast(pa.large_string())
    assert settlement_order(large, day[100:]).tolist() == want
    with_null = pa.array(["b", None, "a"], pa.string())
    day3 = np.zeros(3, dtype=np.int64)
    assert settlement_order(with_null, day3).tolist() == exact(with_null, day3)


@pytest.mark.parametrize("days, width", [(32, 0), (366, 0), (32, 9)])
def test_a_runs_bucket_order_counted_in_two_levels(days, width):
    """(bucket, day) groups past 16 bits and no more than four times as many as the rows (a
    run's order: 4,096 buckets of a year of days at 2M claims) are counted into place by
    their high 8 bits, then each by its low bits (m20): the exact sort, with a tenth of the
    rows in one (bucket, day) (a radix sort of their keys; width 9: ids equal on the 8 key
    bytes, the merge sort), equal ids, and the ids in chunks."""
    rng = np.random.default_rng(days + width)
    n = 4096 * days // 4 + 1
    ids = [f"K0{'x' * width}{k:07d}" for k in rng.permutation(n)]
    ids[5] = ids[9] = ids[11]  # equal ids keep their row order
    claim_id = pa.chunked_array([pa.array(ids[:n // 3]), pa.array(ids[n // 3:])])
    day = rng.integers(19_723, 19_723 + days, n).astype(np.int64)
    lead = rng.integers(0, 4096, n).astype(np.int64)
    lead[::10], day[::10] = 7, 19_725
    assert settlement_order(claim_id, day, lead).tolist() == exact(claim_id, day, lead)


def test_a_runs_bucket_order_takes_no_entry_buffers():
    """The memory of a run's order at 2M claims' density (4,096 buckets of a year of days,
    21-bit groups): the rows, their keys, their groups' low bits and the groups themselves,
    22 bytes a row; the radix sort of (group, row) entries it replaced took 56 (110 MB of
    fresh pages at 2M claims, issue 14, m20)."""
    n = 600_000
    rng = np.random.default_rng(3)
    claim_id = pa.array([f"K000C{k:07d}" for k in rng.permutation(n)], pa.string())
    day = rng.integers(19_723, 20_089, n).astype(np.int32)
    lead = rng.integers(0, 4096, n).astype(np.int32)
    tracemalloc.start()
    try:
        order = settlement_order(claim_id, day, lead)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 24 * n, f"{peak / n:.1f} bytes a row"
    key = list(zip(lead[order].tolist(), day[order].tolist(),
                   claim_id.take(pa.array(order)).to_pylist()))
    assert key == sorted(key)
