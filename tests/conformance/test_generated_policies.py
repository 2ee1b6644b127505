"""Kernel == reference on generated POLICIES and batches (tests/conformance/policies.py), the
property that catches what two fixed plans cannot: a vectorised rounding of negative exact
halves toward −∞, negative money clamped to 0 inside an expression, a band or cap of an
unusual shape, and amounts whose arithmetic leaves int64 (rejected identically, rolled back
so that the other claims settle as if the refused one were not there)."""
import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import yibao.core.engine as engine
from yibao.core.arrow_io import prepare
from yibao.core.engine import SettlementError, settle
from yibao.core.explain import explain_claims
from yibao.core.money import INT64_MAX, OutOfRange
from yibao.core.plan import BOOL, Const, Layer, Plan, Type
from yibao.core.reference import ClaimEvaluator
from yibao.core.reference import settle as settle_reference
from yibao.core.reference import _rows as reference_rows
from yibao.core.registry import default_registry
from yibao.core.vector import Evaluator

from .plans import days
from .policies import COLUMNS, money_expr, plans
from .strategies import SCHEMA, batches, claim

FAST = settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))


def outcome(fn, plan, batch):
    """(results, rejects) or the SettlementError text (a plan paying more than the total)."""
    try:
        out = fn(plan, batch)
    except SettlementError as exc:
        return str(exc)
    return out.results.to_pylist(), out.rejects.to_pylist()


def assert_same(plan, batch):
    kernel, ref = outcome(settle, plan, batch), outcome(settle_reference, plan, batch)
    assert kernel == ref, plan.describe()
    return kernel


@FAST
@given(plan=plans(), batch=batches(invalid=True))
def test_generated_policies_kernel_equals_reference(plan, batch):
    assert_same(plan, batch)


HUGE = st.sampled_from([2**61, 3 * 10**18, 4 * 10**18, 2**62 + 1, INT64_MAX // 2, INT64_MAX])


@st.composite
def huge_batches(draw):
    """Claims of a few persons whose amounts reach int64: some claims' arithmetic (or their
    person's yearly sums) must leave it."""
    rows = draw(st.lists(claim(persons=2), min_size=1, max_size=12))
    for i, row in enumerate(rows):
        row["claim_id"] = f"c{i:02d}"
        if draw(st.booleans()):
            total = draw(HUGE)
            row.update(total=total, in_scope=draw(st.sampled_from([total, total // 2])),
                       self_first=0)
    return pa.Table.from_pylist(rows, schema=SCHEMA)


@FAST
@given(plan=plans(), batch=huge_batches())
def test_amounts_leaving_int64_are_rejected_identically(plan, batch):
    out = assert_same(plan, batch)
    if isinstance(out, str):
        return
    results, rejects = out
    assert len(results) + len(rejects) == batch.num_rows
    for r in rejects:
        if r["reason"] == "amount_out_of_range":
            assert "leaves the int64 range" in r["message"]


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(plan=plans(), batch=huge_batches(), rows=st.integers(1, 5))
def test_refused_claims_roll_back_in_small_chunks(plan, batch, rows):
    """Chunks carry accumulators; a claim refused by the kernel leaves them untouched."""
    saved = engine.CHUNK_ROWS
    engine.CHUNK_ROWS = rows
    try:
        chunked = outcome(settle, plan, batch)
    finally:
        engine.CHUNK_ROWS = saved
    assert chunked == outcome(settle_reference, plan, batch)


@FAST
@given(plan=plans(), batch=huge_batches())
def test_a_refused_claim_changes_no_other_claim(plan, batch):
    """Settling the batch without the refused claims gives the same results."""
    out = outcome(settle, plan, batch)
    if isinstance(out, str):
        return
    results, rejects = out
    refused = {r["claim_id"] for r in rejects if r["reason"] == "amount_out_of_range"}
    if not refused:
        return
    keep = [i for i, c in enumerate(batch.column("claim_id").to_pylist()) if c not in refused]
    again = outcome(settle, plan, batch.take(pa.array(keep, pa.int64())))
    assert again[0] == results


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(expr=money_expr(depth=3), batch=batches(invalid=True))
def test_vectorised_expressions_equal_the_reference(expr, batch):
    """Each generated claim-only expression, row by row: the vectorised value (vector.py)
    equals the reference's, and a row is flagged out of range exactly when the reference
    refuses it. Nothing downstream (the base clipped at 0, a ratio, a cap) can hide a 1-fen
    difference here, as it can in a whole settlement."""
    plan = Plan("expr", "test", days("2024-01-01"), days("2025-12-31"), COLUMNS, (),
                (Layer("l0", "", Const(Type(BOOL), True), expr),))
    prep = prepare(plan, batch)
    values, bad = Evaluator(plan, prep.columns, prep.n).checked(expr)
    oracle = ClaimEvaluator(plan, default_registry())
    for i, row in enumerate(reference_rows(plan, prep)):
        try:
            expected = oracle.eval(expr, row, {})
        except OutOfRange:
            assert bad is not None and bad[i]
            continue
        assert (bad is None or not bad[i]) and int(values[i]) == expected, (i, expected)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(plan=plans(), batch=st.one_of(huge_batches(), batches(invalid=True)))
def test_explain_pays_what_settle_pays(plan, batch):
    """`yibao explain` is a third evaluator (the reference's, traced): it must explain exactly
    the accepted claims, each paying what the kernel pays (issue 12 item 1: they differed)."""
    out = outcome(settle, plan, batch)
    if isinstance(out, str):
        return
    results, _ = out
    explained = explain_claims(plan, batch)
    assert set(explained) == {r["claim_id"] for r in results}
    for r in results:
        pays = {t.name: t.pay for t in explained[r["claim_id"]].layers}
        assert pays == {l.name: r[l.name] for l in plan.layers}, r["claim_id"]
