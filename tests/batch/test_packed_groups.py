"""The settlement order's groups packed in C (issue 14, m18): ``_order.packed_groups`` is
(lead − least lead) · day span + (day − first day), uint16 when that fits 16 bits (the
counted sort), uint32 when it fits 32 (m20: a run's bucket order) and uint64 otherwise, for
int32 days and leads; other integers take the numpy packing (``lower._packed_groups``);
either way the order is Arrow's exact sort."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from hypothesis import given, settings
from hypothesis import strategies as st

from yibao.core import _order
from yibao.core.lower import _packed_groups, settlement_order


def definition(days, lead):
    day = np.asarray(days, np.int64) - int(np.min(days))
    span = int(day.max()) + 1
    if lead is None:
        return day.tolist(), (span - 1).bit_length()
    led = np.asarray(lead, np.int64) - int(np.min(lead))
    return (led * span + day).tolist(), ((int(led.max()) + 1) * span - 1).bit_length()


@settings(max_examples=300, deadline=None)
@given(data=st.data(), n=st.integers(1, 40), top=st.sampled_from([300, 70_000, 2**30]),
       led=st.booleans())
def test_packed_groups_are_the_definition(data, n, top, led):
    lo = data.draw(st.integers(-(2**31), 2**31 - 1 - top))  # lo + top stays int32
    days = np.array(data.draw(st.lists(st.integers(lo, lo + top), min_size=n, max_size=n)),
                    dtype=np.int32)
    lead = np.array(data.draw(st.lists(st.integers(-5, 4095), min_size=n, max_size=n)),
                    dtype=np.int32) if led else None
    group, bits = _order.packed_groups(days, lead)
    want, want_bits = definition(days, lead)
    assert bits == want_bits
    assert group.dtype == (np.uint16 if bits <= 16 else np.uint32 if bits <= 32 else np.uint64)
    assert group.tolist() == want


def test_other_integers_take_the_numpy_packing():
    days = np.array([5, 2**40, 7], dtype=np.int64)  # beyond int32
    assert _order.packed_groups(days) is None
    group, bits = _packed_groups(days, None)
    assert group.tolist() == [0, 2**40 - 5, 2] and bits == 40
    lead = np.array([2**35, 0, 1], dtype=np.int64)
    assert _order.packed_groups(np.array([1, 2, 3], np.int32), lead) is None
    group, bits = _packed_groups(np.array([1, 2, 3], np.int32), lead)
    assert group.tolist() == definition([1, 2, 3], lead)[0]


@settings(max_examples=100, deadline=None)
@given(data=st.data(), n=st.integers(2, 60), wide=st.booleans())
def test_the_order_over_wide_and_narrow_spans_is_the_exact_sort(data, n, wide):
    ids = pa.array([f"C{k:05d}" for k in data.draw(st.permutations(range(n)))])
    days = np.array(data.draw(st.lists(st.integers(0, 70_000 if wide else 3), min_size=n,
                                       max_size=n)), dtype=np.int32)
    exact = pc.sort_indices(pa.table({"d": days, "c": ids}),
                            sort_keys=[("d", "ascending"), ("c", "ascending")])
    assert settlement_order(ids, days).tolist() == exact.to_numpy().tolist()
