"""The kernel loop itself (issue 14): ``_kernel.settle`` on hand-built layer specs against the
money rules written in Python (money.round_half_up, money.fits_int64), and the memory layout
of the accumulators it is given (one cache line per claim's state)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from yibao.core import _kernel
from yibao.core.lower import (DED_NONE, DED_PER_CLAIM, RATIO_PER_CLAIM, Program, _row_width)
from yibao.core.money import INT64_MAX, fits_int64, round_half_up
from yibao.core.plan import RATIO_SCALE

# bases around the point where base × ratio leaves int64 (the kernel's int64 fast path ends
# there and the 128-bit path takes over), exact halves (odd × 50%, × 5%, …) and ordinary money
BASE = st.one_of(st.integers(0, 10**9), st.integers(0, INT64_MAX),
                 st.sampled_from([0, 1, 3, 5, 15, 999_999, INT64_MAX // RATIO_SCALE,
                                  INT64_MAX // RATIO_SCALE + 1, INT64_MAX // 500_000,
                                  INT64_MAX // 500_000 + 1, 2**62, INT64_MAX]))
RATIO = st.one_of(st.integers(0, 2 * RATIO_SCALE),
                  st.sampled_from([500_000, 50_000, 5_000, 250_000, 125_000, 1, 999_999]),
                  st.integers(0, INT64_MAX))


def one_layer(base, ratio, n: int, ded=None) -> dict:
    """A layer paying round_half_up(base × ratio) per claim, no caps (see _kernel.pyi)."""
    return {"applies": np.ones(1, np.uint8), "base_claim": np.asarray(base, np.int64),
            "paid_terms": [], "ded_kind": DED_NONE if ded is None else DED_PER_CLAIM,
            "ded_amount": None if ded is None else np.asarray(ded, np.int64),
            "ded_continuing": None, "ded_state": -1, "last_ded_state": -1,
            "ratio_kind": RATIO_PER_CLAIM, "ratio": np.asarray(ratio, np.int64),
            "bands": [], "band_first": [0, 0], "band_set": None, "band_state": -1, "caps": [],
            "limit_amount": None, "limit_state": -1, "out_pay": np.zeros(n, np.int64),
            "out_ded": None if ded is None else np.zeros(n, np.int64)}


def run(layer: dict, n: int) -> np.ndarray:
    """Settle n claims of n persons (no state shared); returns the overflow flags."""
    overflow = np.zeros(n, np.int32)
    _kernel.settle(np.arange(n, dtype=np.int64), [layer], [np.arange(n, dtype=np.int64)],
                   np.full(n, 2024, np.int32), [np.zeros(n, np.int64)], np.ones(1, np.int64),
                   [], [], overflow)
    return overflow


@settings(max_examples=1500, deadline=None)
@given(pairs=st.lists(st.tuples(BASE, RATIO), min_size=1, max_size=20))
def test_ratio_payment_is_round_half_up_or_flagged(pairs):
    """pay = min(round_half_up(base × ratio / 10^6), base); a claim whose product leaves
    int64 is still exact (128 bits), one whose payment leaves int64 is flagged and pays 0."""
    base, ratio = (np.array(c, dtype=np.int64) for c in zip(*pairs))
    layer = one_layer(base, ratio, len(pairs))
    overflow = run(layer, len(pairs))
    for t, (b, r) in enumerate(pairs):
        exact = round_half_up(b * r, RATIO_SCALE)
        if fits_int64(exact):
            assert (int(layer["out_pay"][t]), int(overflow[t])) == (min(exact, b), 0), (b, r)
        else:
            assert (int(layer["out_pay"][t]), int(overflow[t])) == (0, 1), (b, r)


def test_a_deductible_output_comes_with_a_deductible():
    """The loop writes ``out_ded`` exactly for layers with a deductible; a spec that says
    otherwise is refused before the loop runs, not read out of bounds."""
    layer = one_layer([100], [500_000], 1)
    layer["out_ded"] = np.zeros(1, np.int64)
    with pytest.raises(ValueError, match="deductible"):
        run(layer, 1)
    layer = one_layer([100], [500_000], 1, ded=[30])
    assert run(layer, 1).tolist() == [0]
    assert (layer["out_ded"].tolist(), layer["out_pay"].tolist()) == ([30], [35])


@pytest.mark.parametrize("width", range(1, 20))
def test_a_keys_accumulators_sit_in_whole_cache_lines(width):
    """Rows are padded to 1, 2, 4 or a multiple of 8 slots in blocks aligned to 64 bytes, so
    a key's accumulators (at most a line) never straddle two cache lines."""
    prog = Program(plan=None, n=0, key_counts=[37], widths=[width])
    (block,) = prog.accumulator_rows()
    row = int(prog.row_widths()[0])
    assert row == _row_width(width) >= width
    assert block.ctypes.data % 64 == 0 and len(block) == 37 * row
    assert row in (1, 2, 4) or row % 8 == 0
    assert (block == 0).all()  # stamp 0: no year yet; the slots as a restart leaves them


def test_an_expression_two_layers_share_is_one_array():
    """The reference policy's inpatient and outpatient layers both pay on
    ``in_scope - self_first``: lowered once, read by the kernel from one array."""
    from pathlib import Path

    from yibao.core.engine import lower_batch
    from yibao.core.generate import generate_claims
    from yibao.dsl.compiler import compile_policy
    plan = compile_policy(Path(__file__).resolve().parents[2] / "city_configs" / "reference")
    assert plan.layers[0].base == plan.layers[1].base
    layers = lower_batch(plan, generate_claims(500, seed=3)).program.layers
    assert layers[0]["base_claim"] is layers[1]["base_claim"]
    assert len(layers[0]["base_claim"]) > 1
