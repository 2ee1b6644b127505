"""Kernel == reference on generated batches, and results independent of order and batching."""
import pyarrow as pa
import pyarrow.compute as pc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from yibao.core.engine import settle
from yibao.core.reference import settle as settle_reference

from .plans import referral_plan, reference_plan
from .strategies import SCHEMA, batches

PLANS = [reference_plan(), referral_plan()]
FAST = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _assert_same(a, b):
    assert a.results.equals(b.results), (a.results.to_pylist(), b.results.to_pylist())
    assert a.rejects.equals(b.rejects), (a.rejects.to_pylist(), b.rejects.to_pylist())


@FAST
@given(batch=batches(invalid=True), which=st.sampled_from([0, 1]))
def test_kernel_equals_reference(batch, which):
    plan = PLANS[which]
    kernel, ref = settle(plan, batch), settle_reference(plan, batch)
    _assert_same(kernel, ref)
    assert kernel.results.num_rows + kernel.rejects.num_rows == batch.num_rows


@FAST
@given(batch=batches(), seed=st.randoms(use_true_random=False), cut=st.integers(0, 40))
def test_results_do_not_depend_on_order_or_batching(batch, seed, cut):
    plan = reference_plan()
    base = settle(plan, batch)
    order = list(range(batch.num_rows))
    seed.shuffle(order)
    shuffled = batch.take(pa.array(order, pa.int64()))
    cut = min(cut, shuffled.num_rows)
    # Two chunks, the second a slice with a non-zero offset into its buffers.
    chunked = pa.concat_tables([shuffled.slice(0, cut), shuffled.slice(cut)])
    again = settle(plan, chunked)
    assert base.results.equals(again.results)


@FAST
@given(batch=batches())
def test_dictionary_encoded_text_gives_the_same_results(batch):
    plan = reference_plan()
    encoded = batch
    for name in ("tier", "setting", "person_id"):
        i = encoded.schema.get_field_index(name)
        encoded = encoded.set_column(i, name, pc.dictionary_encode(encoded.column(name)))
    _assert_same(settle(plan, batch), settle(plan, encoded))


@FAST
@given(batch=batches())
def test_invariants(batch):
    result = settle(reference_plan(), batch).results
    total = dict(zip(batch.column("claim_id").to_pylist(), batch.column("total").to_pylist()))
    layers = ["basic_inpatient", "basic_outpatient", "critical", "assistance"]
    for row in result.to_pylist():
        assert all(row[l] >= 0 for l in layers)
        assert row["self_pay"] >= 0
        assert sum(row[l] for l in layers) + row["self_pay"] == total[row["claim_id"]]


def test_empty_batch():
    empty = SCHEMA.empty_table()
    for evaluator in (settle, settle_reference):
        out = evaluator(reference_plan(), empty)
        assert out.results.num_rows == 0 and out.rejects.num_rows == 0


@FAST
@given(batch=batches(invalid=True), which=st.sampled_from([0, 1]), rows=st.integers(1, 7))
def test_settling_in_small_chunks_changes_nothing(batch, which, rows):
    """The engine settles in chunks with accumulators carried over; tiny chunks must give the
    one-pass answer (and the reference's)."""
    import yibao.core.engine as engine
    plan = PLANS[which]
    saved = engine.CHUNK_ROWS
    engine.CHUNK_ROWS = rows
    try:
        chunked = settle(plan, batch)
    finally:
        engine.CHUNK_ROWS = saved
    _assert_same(chunked, settle_reference(plan, batch))


def test_thread_count_does_not_change_results(monkeypatch):
    """Two threads overlap building the next chunk with the kernel on this one; the kernel
    still settles chunks in order, so one thread gives the same bytes."""
    from yibao.core.generate import generate_claims
    claims = generate_claims(150_000, seed=3)  # three chunks of 64k rows
    plan = reference_plan()
    monkeypatch.setenv("YIBAO_THREADS", "2")
    two = settle(plan, claims)
    monkeypatch.setenv("YIBAO_THREADS", "1")
    one = settle(plan, claims)
    assert two.results.equals(one.results) and two.rejects.equals(one.rejects)
