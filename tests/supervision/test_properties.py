"""Hypothesis: generated flag rules over generated batches, the vectorised evaluator equal to
the oracle; and flags that never depend on row order or on how the batch was split."""
from __future__ import annotations

import random

import pyarrow as pa
from hypothesis import HealthCheck, given, settings, strategies as st

from yibao.core import supervision
from yibao.core.engine import settle
from yibao.core.points.plan import Test
from yibao.core.supervision import compute, reference
from yibao.core.supervision.plan import (AboveGroupMean, CcShare, ListedGroups, Readmit,
                                         SevereShare, ShortStay, Supervision,
                                         SupervisionFlag)
from yibao.core.supervision.stays import STAY_FIELDS, SupervisionError, build_stays
from supervision_helpers import FLAGS, GROUPS, _random_claims, city, claim

ratios = st.integers(1, 4_000_000)
rules = st.one_of(
    st.builds(Readmit, st.integers(0, 30), st.booleans()),
    st.builds(AboveGroupMean, st.sampled_from(["los", "cost"]), ratios),
    st.builds(ShortStay, st.integers(0, 5), ratios),
    st.builds(ListedGroups, st.lists(st.sampled_from(GROUPS), min_size=1, unique=True)
              .map(lambda g: tuple(sorted(g)))),
    st.builds(CcShare, ratios, st.integers(1, 4)),
    st.builds(SevereShare, ratios, ratios, st.integers(1, 4)))
applies = st.one_of(st.just(()), st.builds(lambda lv: (Test("hospital_level", ">=", lv),),
                                           st.integers(1, 3)))


@st.composite
def flags(draw):
    out = []
    for i, rule in enumerate(draw(st.lists(rules, min_size=1, max_size=5))):
        effect = "review" if draw(st.booleans()) and not isinstance(
            rule, (CcShare, SevereShare)) else ""
        out.append(SupervisionFlag(f"f{i}", "", rule, draw(st.sampled_from(
            ["notice", "review", "serious"])), draw(applies), effect))
    return Supervision(tuple(out))


maybe = lambda s: st.one_of(st.none(), s)  # noqa: E731


@st.composite
def batches(draw):
    n = draw(st.integers(0, 25))
    rows = []
    for i in range(n):
        admit = draw(maybe(st.integers(0, 40)))
        discharge = draw(st.integers(0, 45))
        los = None if admit is None or discharge < admit else max(1, discharge - admit)
        total = draw(st.integers(-1_000, 50_000))
        rows.append({"claim_id": f"c{i:02d}", "person_id": draw(maybe(st.sampled_from("pq"))),
                     "hospital_id": draw(maybe(st.sampled_from(["H1", "H2", "H3"]))),
                     "hospital_level": draw(maybe(st.integers(1, 3))), "admit": admit,
                     "discharge": discharge, "los": los, "total": total,
                     "fund": draw(st.integers(0, 50_000)),
                     "group": draw(maybe(st.sampled_from(GROUPS + ("A", "ZZ9X")))),
                     })
    return pa.Table.from_pylist(rows, schema=pa.schema(STAY_FIELDS))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(flags(), batches())
def test_kernel_equals_reference(sup, table):
    fast = compute.evaluate(sup, table)
    slow = reference.evaluate(sup, table)
    assert fast[0].equals(slow[0]), (fast[0].to_pylist(), slow[0].to_pylist())
    assert fast[1].equals(slow[1]), (fast[1].to_pylist(), slow[1].to_pylist())


@settings(max_examples=100, deadline=None)
@given(flags(), batches(), st.randoms(use_true_random=False))
def test_row_order_does_not_matter(sup, table, rnd):
    order = list(range(table.num_rows))
    rnd.shuffle(order)
    shuffled = table.take(pa.array(order, pa.int64()))
    assert compute.evaluate(sup, table)[0].equals(compute.evaluate(sup, shuffled)[0])


def test_shuffled_and_split_batches_give_the_same_flags_bytes(tmp_path):
    """The batch settled whole, and settled in two pieces split by person (as the partitioned
    run splits it) with its rows shuffled: the same flags table, byte for byte as Parquet."""
    import io

    import pyarrow.parquet as pq
    plan = city(tmp_path, FLAGS)
    rows = _random_claims(7)
    claims = pa.Table.from_pylist(rows)
    whole = supervision.evaluate(plan, claims, settle(plan, claims).results)
    assert whole.flags.num_rows > 5 and whole.held.num_rows > 0
    random.Random(3).shuffle(rows)
    pieces = [[r for r in rows if int(r["person_id"][1:]) % 2 == k] for k in (0, 1)]
    results = pa.concat_tables([settle(plan, pa.Table.from_pylist(p)).results for p in pieces])
    split = supervision.evaluate(plan, pa.Table.from_pylist(rows), results)

    def parquet(t):
        sink = io.BytesIO()
        pq.write_table(t, sink)
        return sink.getvalue()
    assert parquet(split.flags) == parquet(whole.flags)
    assert parquet(split.indicators) == parquet(whole.indicators)


def test_review_effect_holds_the_fund_payment(tmp_path):
    """c2 is readmitted 2 days after c1 at H1: flagged with effect review. The fund paid 80%
    of its 1,000 fen, 800 fen, which is now held: pending_review 800 on c2, 0 elsewhere."""
    from supervision_helpers import both
    plan = city(tmp_path, FLAGS)
    rows = [claim("c1", "p1", "H1", "AB15", 1000, 10, 12),
            claim("c2", "p1", "H1", "AB15", 1000, 14, 15),
            claim("c3", "p2", "H1", "AB15", 1000, 14, 15)]
    got = both(plan, rows)
    assert got.held.to_pylist() == [{"claim_id": "c2", "pending_review": 800}]
    results = settle(plan, pa.Table.from_pylist(rows)).results
    held = dict(zip(*got.apply(results).select(["claim_id", "pending_review"])
                    .to_pydict().values()))
    assert held == {"c1": 0, "c2": 800, "c3": 0}
    row = [r for r in got.flags.to_pylist() if r["rule"] == "split_stay"][0]
    assert row["effect"] == "pending_review"


def test_sums_beyond_int64_refused_naming_the_problem(tmp_path):
    plan = city(tmp_path, FLAGS)
    big = 4_000_000_000_000_000_000
    claims = pa.table({"claim_id": ["a", "b"], "total": pa.array([big, big], pa.int64())})
    results = pa.table({"claim_id": ["a", "b"], "self_pay": pa.array([0, 0], pa.int64())})
    try:
        build_stays(plan.supervision, claims, results)
    except SupervisionError as exc:
        assert "2^62" in str(exc)
    else:
        raise AssertionError("no SupervisionError")


def test_indicator_exactly_on_a_rounding_boundary():
    """H's cost index is (1/3 + 1/6 + 62 × 0) / 64 = 1/128 = 7,812.5 millionths, rounded
    half-up to 7,813. The terms 1/3 and 1/6 are not exact at the bracketing scale, so the
    fast path cannot decide and must recompute the hospital exactly; the oracle agrees."""
    def stay(cid, h, g, total):
        return {"claim_id": cid, "person_id": cid, "hospital_id": h, "hospital_level": 3,
                "admit": 1, "discharge": 2, "los": 1, "total": total, "fund": 0, "group": g}
    rows = [stay("a1", "H", "A", 1), stay("a2", "X", "A", 8), stay("a3", "X", "A", 0),
            stay("b1", "H", "B", 1), stay("b2", "X", "B", 11), stay("c0", "X", "C", 5)]
    rows += [stay(f"c{i}", "H", "C", 0) for i in range(1, 63)]
    table = pa.Table.from_pylist(rows, schema=pa.schema(STAY_FIELDS))
    sup = Supervision((SupervisionFlag("f", "", ListedGroups(("A",))),))
    fast, slow = compute.evaluate(sup, table)[1], reference.evaluate(sup, table)[1]
    assert fast.equals(slow)
    assert {r["hospital_id"]: r["cost_index"] for r in fast.to_pylist()}["H"] == 7_813
