"""The kernel's two loops (issue 14): plans with one key kind whose row is one cache line of 8
slots (the reference policy's person) take ``settle_one_line``, every other plan the general
``settle_rows``. Both settle a claim against its frame (its keys' rows side by side) and roll a
claim back by not writing the frame back. Here the same program runs through both (the same
row padded to 16 slots takes the general loop) and must give the same outputs, the same
overflow flags and the same accumulators; the checks that keep the frame in bounds refuse a
spec before the loop runs."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from yibao.core import _kernel
from yibao.core.engine import lower_batch
from yibao.core.lower import (DED_NONE, DED_PER_YEAR, RATIO_FULL, RATIO_PER_CLAIM, Program)
from yibao.core.money import INT64_MAX

from .plans import reference_plan
from .strategies import batches

NO_YEAR = np.iinfo(np.int64).min


def rows_of(count: int, width: int) -> np.ndarray:
    """``count`` fresh accumulator rows of ``width`` slots (stamps: no year yet)."""
    block = np.zeros(count * width, np.int64)
    block[::width] = NO_YEAR
    return block


def run(prog: Program, width: int) -> tuple:
    """(outputs per layer, overflow flags, accumulator rows cut to the plan's slots) of
    ``prog`` with its one key kind's rows ``width`` slots wide."""
    for spec in prog.layers:
        spec["out_pay"][:] = -1
        if spec["out_ded"] is not None:
            spec["out_ded"][:] = -1
    (count,) = prog.key_counts
    block, overflow = rows_of(count, width), np.zeros(prog.n, np.int32)
    _kernel.settle(np.arange(prog.n, dtype=np.int64), prog.layers, prog.key_ids, prog.year,
                   [block], np.array([width], np.int64), prog.state_keys, prog.state_offsets,
                   overflow)
    outs = [(s["out_pay"].tolist(), None if s["out_ded"] is None else s["out_ded"].tolist())
            for s in prog.layers]
    return outs, overflow.tolist(), block.reshape(count, width)[:, :8].tolist()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batch=batches(invalid=True))
def test_the_one_line_loop_equals_the_general_loop(batch):
    """The reference policy's person row is one line (7 accumulators + the year stamp): the
    one-line loop; padded to 16 slots, the same program takes the general loop."""
    prog = lower_batch(reference_plan(), batch).program
    assert len(prog.key_counts) == 1 and prog.row_widths().tolist() == [8]
    assert run(prog, 8) == run(prog, 16)


def layer(base, n: int, *, paid=(), ded_state=-1, ratio=None, cap=None) -> dict:
    """A layer spec (see _kernel.pyi): a per-year deductible of 100 fen when ``ded_state``
    is given, a per-claim ratio or full pay, a yearly cap (amount, state) when given."""
    return {"applies": np.ones(1, np.uint8), "base_claim": np.asarray(base, np.int64),
            "paid_terms": list(paid),
            "ded_kind": DED_PER_YEAR if ded_state >= 0 else DED_NONE,
            "ded_amount": np.full(1, 100, np.int64) if ded_state >= 0 else None,
            "ded_continuing": None, "ded_state": ded_state, "last_ded_state": -1,
            "ratio_kind": RATIO_FULL if ratio is None else RATIO_PER_CLAIM,
            "ratio": None if ratio is None else np.full(1, ratio, np.int64),
            "bands": [], "band_first": [0, 0], "band_set": None, "band_state": -1,
            "caps": [] if cap is None else [(1, np.full(1, cap[0], np.int64), cap[1], 0)],
            "limit_amount": None, "limit_state": -1, "out_pay": np.zeros(n, np.int64),
            "out_ded": np.zeros(n, np.int64) if ded_state >= 0 else None}


def overflowing_program(bases: list) -> Program:
    """One person, claims ``bases``: layer 0 pays 50% after a yearly deductible under a
    yearly cap of 10,000 fen; layer 1 pays its base plus layer 0's payment, which leaves
    int64 for a base near INT64_MAX (that claim is rolled back)."""
    n = len(bases)
    prog = Program(plan=None, n=n, key_ids=[np.zeros(n, np.int64)], key_counts=[1],
                   year=np.full(n, 2024, np.int32), state_keys=[0, 0],
                   state_offsets=[1, 2], widths=[3])
    prog.layers = [layer(bases, n, ded_state=0, ratio=500_000, cap=(10_000, 1)),
                   layer(bases, n, paid=[(0, 1)])]
    return prog


@pytest.mark.parametrize("width", [8, 16])
def test_a_claim_leaving_int64_is_rolled_back_in_either_loop(width):
    """The middle claim's layer 1 leaves int64 after its layer 0 consumed deductible and cap:
    it pays 0, is flagged at layer 2 (index + 1), and the claims after it settle as if it
    had not been in the batch."""
    with_bad = overflowing_program([1_000, INT64_MAX - 10, 4_000, 30_000])
    without = overflowing_program([1_000, 4_000, 30_000])
    outs, overflow, rows = run(with_bad, width)
    outs_ok, overflow_ok, rows_ok = run(without, width)
    assert overflow == [0, 2, 0, 0] and overflow_ok == [0, 0, 0]
    for (pay, ded), (pay_ok, ded_ok) in zip(outs, outs_ok):
        assert pay[1] == 0 and pay[:1] + pay[2:] == pay_ok
        assert ded is None or (ded[1] == 0 and ded[:1] + ded[2:] == ded_ok)
    assert rows == rows_ok
    assert outs_ok[0] == ([450, 2_000, 7_550], [100, 0, 0])  # the yearly cap binds at 10,000


def test_an_accumulator_outside_its_row_is_refused():
    """A state slot at or past its key's row width would be read outside the claim's frame:
    the spec is refused before the loop runs."""
    prog = overflowing_program([1_000])
    prog.state_offsets = [1, 3]  # the row has 3 slots: 0 (the year), 1 and 2
    with pytest.raises(ValueError, match="outside a row of 3 slots"):
        _kernel.settle(np.arange(1, dtype=np.int64), prog.layers, prog.key_ids, prog.year,
                       [rows_of(1, 3)], np.array([3], np.int64), prog.state_keys,
                       prog.state_offsets, np.zeros(1, np.int32))


def test_a_yearly_cap_without_an_accumulator_is_refused():
    prog = overflowing_program([1_000])
    prog.layers[0]["caps"] = [(1, np.full(1, 10_000, np.int64), -1, 0)]
    with pytest.raises(ValueError, match="yearly cap needs an accumulator"):
        _kernel.settle(np.arange(1, dtype=np.int64), prog.layers, prog.key_ids, prog.year,
                       [rows_of(1, 3)], np.array([3], np.int64), prog.state_keys,
                       prog.state_offsets, np.zeros(1, np.int32))


def test_the_reference_policy_takes_the_one_line_loop():
    """What the benchmark's claim (issue 14, ``benchmarks/kernel_loop.py``) rests on: the
    reference policy's accumulators fill one 8-slot row of one key kind."""
    from yibao.core.generate import generate_claims
    from yibao.dsl.compiler import compile_policy
    plan = compile_policy(Path(__file__).resolve().parents[2] / "city_configs" / "reference")
    prog = lower_batch(plan, generate_claims(200, seed=5)).program
    assert len(prog.key_counts) == 1 and prog.row_widths().tolist() == [8]
