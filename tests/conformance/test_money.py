"""The money rules of benefits.md held on every evaluator: round_half_up(amount × ratio) half
away from zero (negative halves included), and no arithmetic that wraps at int64 — each
vectorised operation equals exact Python arithmetic where it fits and flags the row where it
does not; issue 12's examples settle the same on the kernel, the reference and explain."""
import datetime

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from yibao.core.engine import settle
from yibao.core.explain import explain_claim
from yibao.core.money import INT64_MAX, INT64_MIN, fits_int64, round_half_up
from yibao.core.plan import RATIO_SCALE
from yibao.core.reference import settle as settle_reference
from yibao.core.vector import (apply_ratio, apply_ratio_checked, checked_add, checked_mul,
                               checked_sub, round_half_up_div)
from yibao.dsl.compiler import compile_text

I64 = st.one_of(st.integers(INT64_MIN, INT64_MAX), st.integers(-10**7, 10**7),
                st.sampled_from([INT64_MIN, INT64_MIN + 1, -1, 0, 1, INT64_MAX - 1, INT64_MAX,
                                 -(2**62), 2**62, -5, 5, -500_000, 500_000]))
# ratios that make exact halves: amount × 50% with an odd amount, × 5%, × 0.5% …
RATIO = st.one_of(st.integers(-2 * RATIO_SCALE, 2 * RATIO_SCALE),
                  st.sampled_from([500_000, 50_000, 5_000, 250_000, 125_000, -500_000]),
                  st.integers(INT64_MIN, INT64_MAX))
PROPS = settings(max_examples=2000, deadline=None)


def arr(*values):
    return [np.array([v], dtype=np.int64) for v in values]


@PROPS
@given(num=I64, den=st.sampled_from([2, 100, RATIO_SCALE, 3, 7]))
def test_vector_rounding_equals_the_rule(num, den):
    assert int(round_half_up_div(*arr(num), den)[0]) == round_half_up(num, den)


def test_negative_halves_round_away_from_zero():
    assert round_half_up(-5, 10) == -1 and round_half_up(5, 10) == 1
    assert round_half_up(-15, 10) == -2 and round_half_up(-14, 10) == -1
    money = np.array([-1, -3, -5, 1, 3, -2_000_001], dtype=np.int64)
    half = np.full(len(money), 500_000, dtype=np.int64)
    assert apply_ratio(money, half).tolist() == [-1, -2, -3, 1, 2, -1_000_001]


@PROPS
@given(money=I64, ratio=RATIO)
def test_money_times_ratio_is_exact_or_flagged(money, ratio):
    out, over = apply_ratio_checked(*arr(money, ratio))
    exact = round_half_up(money * ratio, RATIO_SCALE)
    assert bool(over[0]) == (not fits_int64(exact))
    if fits_int64(exact):
        assert int(out[0]) == exact


@PROPS
@given(a=I64, b=I64)
def test_add_sub_mul_are_exact_or_flagged(a, b):
    for fn, exact in ((checked_add, a + b), (checked_sub, a - b), (checked_mul, a * b)):
        out, over = fn(*arr(a, b))
        assert bool(over[0]) == (not fits_int64(exact)), fn.__name__
        if fits_int64(exact):
            assert int(out[0]) == exact, fn.__name__


HEAD = 'policy "t" {\n  region "test"\n  effective 2024-01-01 to 2024-12-31\n}\n'


def batch(*rows):
    """(claim_id, total, in_scope) rows of one person, one day apart."""
    n = len(rows)
    return pa.table({
        "claim_id": [r[0] for r in rows], "person_id": ["p1"] * n,
        "discharge_date": pa.array([datetime.date(2024, 5, 1) + datetime.timedelta(days=i)
                                    for i in range(n)], pa.date32()),
        "total": pa.array([r[1] for r in rows], pa.int64()),
        "in_scope": pa.array([r[2] for r in rows], pa.int64()),
        "self_first": pa.array([0] * n, pa.int64())})


def both(plan, claims):
    kernel, ref = settle(plan, claims), settle_reference(plan, claims)
    assert kernel.results.equals(ref.results) and kernel.rejects.equals(ref.rejects)
    return kernel


def test_issue_item_1_negative_intermediate():
    """total 3, in_scope 2: 3 + (2 - 3) × 50% = 3 - 0.5 → 2 (not 3) on every path."""
    plan = compile_text(HEAD + "layer a {\n  base total + (in_scope - total) * 50%\n"
                        "  ratio 100%\n}\n")
    claims = batch(("c1", 3, 2))
    assert both(plan, claims).results.column("a").to_pylist() == [2]
    assert explain_claim(plan, claims, "c1").layers[0].pay == 2


@pytest.mark.parametrize("body", [
    "  base in_scope * 3\n  ratio 10%\n",       # the issue's wrap to 0
    "  base in_scope + total\n  ratio 10%\n",
    "  base in_scope - 0 - total * 2\n",
])
def test_issue_item_2_claim_arithmetic_out_of_range_is_a_named_reject(body):
    plan = compile_text(HEAD + "layer a {\n" + body + "}\n")
    out = both(plan, batch(("big", 5 * 10**18, 5 * 10**18), ("small", 1_000, 1_000)))
    assert out.results.column("claim_id").to_pylist() == ["small"]
    [reject] = out.rejects.to_pylist()
    assert reject["claim_id"] == "big" and reject["reason"] == "amount_out_of_range"
    assert "layer 'a'" in reject["message"]


def test_yearly_sums_out_of_range_reject_the_claim_and_roll_it_back():
    """Bands accumulate a person's yearly amount: the second 5·10^18 claim would take it past
    int64. It is refused, and the third claim settles as if it had never been there."""
    plan = compile_text(HEAD + "layer a {\n  base in_scope\n"
                        "  bands per person per year { 0 to 1000 yuan: 50%, 1000 yuan and "
                        "above: 10% }\n  cap 10_000 yuan per person per year\n}\n")
    claims = batch(("c1", 5 * 10**18, 5 * 10**18), ("c2", 5 * 10**18, 5 * 10**18),
                   ("c3", 100_000, 100_000))
    out = both(plan, claims)
    assert out.rejects.column("claim_id").to_pylist() == ["c2"]
    without = both(plan, claims.take([0, 2]))  # c1 and c3 on their own days (results
    assert out.results.equals(without.results)  # carry the discharge date)


def test_only_the_branch_taken_counts():
    """`if … then … else …` is computed for both branches on the vectorised path; an overflow
    in the branch a claim does not take must not refuse it (the reference never computes it)."""
    plan = compile_text(HEAD + "layer a {\n  base if total > 100 then in_scope else "
                        "in_scope * 3\n  ratio 10%\n}\n")
    out = both(plan, batch(("big", 5 * 10**18, 5 * 10**18), ("small", 50, 50)))
    assert out.rejects.num_rows == 0
    assert out.results.column("a").to_pylist() == [5 * 10**17, 15]


def test_stages_see_the_claims_that_were_settled():
    """A refused claim leaves the claims a plugin stage receives aligned with the results."""
    from yibao.core.registry import Stage, default_registry
    reg = default_registry()
    echo = lambda plan, results, claims, context: {"echo": claims.column("claim_id").to_pylist()}
    reg.stages.append(Stage("echo", echo, (("echo", pa.string()),), reference=echo))
    plan = compile_text(HEAD + "layer a {\n  base in_scope\n"
                        "  bands per person per year { 0 to 1000 yuan: 50%, 1000 yuan and "
                        "above: 10% }\n}\n")
    claims = batch(("c1", 5 * 10**18, 5 * 10**18), ("c2", 5 * 10**18, 5 * 10**18),
                   ("c3", 100_000, 100_000))
    for settle_on in (settle, settle_reference):
        out = settle_on(plan, claims, reg)
        assert out.rejects.column("claim_id").to_pylist() == ["c2"]
        assert out.results.column("echo").equals(out.results.column("claim_id"))


EDGES = [INT64_MIN, INT64_MIN + 1, -(2**62), -500_000, -1, 0, 1, 500_000, 2**62,
         INT64_MAX - 1, INT64_MAX]


def test_checked_sub_over_columns_of_edge_values():
    """Every pair of edge values in one column pass (the C loop, as the evaluator calls it),
    also with a constant as a stride-0 broadcast and a strided column: exact where it fits,
    flagged where it leaves int64, on each row by itself."""
    pairs = [(a, b) for a in EDGES for b in EDGES]
    a = np.array([p[0] for p in pairs], dtype=np.int64)
    b = np.array([p[1] for p in pairs], dtype=np.int64)
    cases = [(a, b), (a[::3], b[::3]), (a[::-1], b[::-1])]
    for c in EDGES:
        const = np.broadcast_to(np.int64(c), a.shape)
        cases += [(a, const), (const, a)]
    for x, y in cases:
        out, over = checked_sub(x, y)
        assert out.dtype == np.int64 and over.dtype == bool and out.shape == x.shape
        for i, (u, v) in enumerate(zip(x.tolist(), y.tolist())):
            assert bool(over[i]) == (not fits_int64(u - v)), (u, v)
            if fits_int64(u - v):
                assert int(out[i]) == u - v, (u, v)
    empty = np.zeros(0, dtype=np.int64)
    assert [len(r) for r in checked_sub(empty, empty)] == [0, 0]


def _lookup_rows(rows, columns):
    """Evaluator lookups of a table with ``rows`` ({(key, ...): value}, int keys) at
    ``columns`` (one int64 array or a stride-0 constant per key): (values, miss)."""
    from types import SimpleNamespace

    from yibao.core.plan import INT, MONEY, Column, Lookup, Table, Type
    from yibao.core.vector import Evaluator
    width = len(next(iter(rows)))
    table = Table("t", (Type(INT),) * width, Type(MONEY), tuple(rows.items()))
    plan = SimpleNamespace(table=lambda name: table)
    n = len(columns[0])
    ev = Evaluator(plan, {f"k{i}": c for i, c in enumerate(columns)}, n)
    values, _ = ev.checked(Lookup(Type(MONEY), "t", tuple(Column(Type(INT), f"k{i}")
                                                         for i in range(width))))
    return values.tolist(), ev.missing.tolist()


@pytest.mark.parametrize("keys", [[INT64_MAX - 2, INT64_MAX], [INT64_MIN, INT64_MIN + 2],
                                  [-5, 0, 3], [0]])
def test_lookup_at_edge_keys_hits_exactly_its_rows(keys):
    """Table keys at the int64 limits, negative and zero, looked up at every edge value: a
    row hits its key's value or misses (value 0), never a neighbour's cell — a key far outside
    the table's range must not wrap into it."""
    rows = {(k,): 100 + i for i, k in enumerate(keys)}
    probe = sorted(set(EDGES + keys + [k + d for k in keys for d in (-1, 1)
                                       if INT64_MIN <= k + d <= INT64_MAX]))
    values, missing = _lookup_rows(rows, [np.array(probe, dtype=np.int64)])
    assert values == [rows.get((k,), 0) for k in probe]
    assert missing == [(k,) not in rows for k in probe]


def test_two_key_lookup_with_an_absent_cell_and_a_constant_key():
    rows = {(1, -1): 7, (1, 2): 8, (3, -1): 9}  # (3, 2) is absent: a miss, not 0 paid
    first = np.array([1, 1, 3, 3, 2, INT64_MIN, INT64_MAX], dtype=np.int64)
    second = np.array([-1, 2, -1, 2, -1, 2, -1], dtype=np.int64)
    values, missing = _lookup_rows(rows, [first, second])
    assert values == [7, 8, 9, 0, 0, 0, 0]
    assert missing == [False, False, False, True, True, True, True]
    const = np.broadcast_to(np.int64(2), first.shape)
    values, missing = _lookup_rows(rows, [first, const])
    assert values == [8, 8, 0, 0, 0, 0, 0] and missing == [False, False] + [True] * 5


@pytest.mark.parametrize("members", [(INT64_MAX,), (INT64_MIN, INT64_MIN + 2), (-1, 0, 1),
                                     (0,), (5, 500_000)])
def test_in_set_at_edge_values(members):
    """``in {…}`` of integer sets at the int64 limits, negative and zero, tested at every edge
    value (and a stride-0 constant): a value far outside the set's range must not wrap in."""
    from yibao.core.plan import BOOL, INT, Column, InSet, Type
    from yibao.core.vector import Evaluator
    probe = sorted(set(EDGES + [m + d for m in members for d in (-1, 0, 1)
                                if INT64_MIN <= m + d <= INT64_MAX]))
    column = np.array(probe, dtype=np.int64)
    node = InSet(Type(BOOL), Column(Type(INT), "x"), members)
    for x in (column, np.broadcast_to(column[:1], column.shape)):
        got = Evaluator(None, {"x": x}, len(x)).checked(node)[0]
        assert got.dtype == bool and got.tolist() == [v in members for v in x.tolist()]
