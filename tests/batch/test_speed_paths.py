"""The fast paths of the `yibao settle` command (issue 14) give what the plain ones give: the
settlement order from 8-byte keys after the ids' common lead equals Arrow's exact sort, and
the command's start-up does not import pandas."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from hypothesis import given, settings
from hypothesis import strategies as st

from yibao.core.lower import settlement_order

LEADS = st.sampled_from(["", "K000C", "H12345-2024-", "院", "ab"])
TAIL = st.text(alphabet="0189AZz-é院", max_size=12)


@settings(max_examples=150, deadline=None)
@given(ids=st.lists(st.tuples(LEADS, TAIL), min_size=1, max_size=60, unique=True),
       days=st.data())
def test_settlement_order_is_the_exact_sort(ids, days):
    claim_id = pa.array(sorted({a + b for a, b in ids}), pa.string())
    n = len(claim_id)
    order = np.random.default_rng(n).permutation(n)
    claim_id = claim_id.take(pa.array(order))
    day = np.array(days.draw(st.lists(st.integers(19_700, 19_703), min_size=n, max_size=n)),
                   dtype=np.int64)
    exact = pc.sort_indices(pa.table({"d": day, "c": claim_id}),
                            sort_keys=[("d", "ascending"), ("c", "ascending")]).to_numpy()
    assert settlement_order(claim_id, day).tolist() == exact.tolist()


def test_ids_sharing_a_long_lead_need_no_string_sort(monkeypatch):
    """Ids like ``K000C869076`` tie on their first 8 bytes; after the common lead they do not,
    so the integer sort decides alone (the exact Arrow sort cost ~1 s on 2M claims)."""
    from yibao.core import lower
    ids = pa.array([f"H12345-2024-{k:06d}" for k in range(5_000)][::-1], pa.string())
    day = np.repeat(np.arange(50, dtype=np.int64), 100)
    monkeypatch.setattr(lower.pc, "sort_indices", _no_string_sort)
    order = settlement_order(ids, day)
    assert [ids[int(i)].as_py() for i in order[:2]] == ["H12345-2024-004900",
                                                         "H12345-2024-004901"]


def _no_string_sort(*args, **kwargs):
    raise AssertionError("fell back to the exact string sort")
